//! Answers the server sends back: 9011 (request answer), 9012 (execution result), 9014 (data
//! answer).
//!
//! An answer repeats the request's `QN` (that is how the logger matches it), `PW` and `MN`, and
//! carries a Flag of the request's protocol version with neither A (answers are not answered) nor
//! D. `ST` is a parameter: the standard uses 91 (system interaction) for answers, but some
//! platforms echo the request's `ST` and some loggers insist on it.

use super::codes::cn;
use super::encode::PacketSpec;
use super::error::EncodeError;
use super::flag::PacketFlag;
use super::packet::Packet;

/// `QnRtn` of a 9011 request answer.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QnRtn {
    /// Request accepted, about to be executed.
    Ready = 1,
    Rejected = 2,
    BadPassword = 3,
    BadMn = 4,
    BadSt = 5,
    BadFlag = 6,
    BadQn = 7,
    BadCn = 8,
    BadCrc = 9,
    Unknown = 100,
}

/// `ExeRtn` of a 9012 execution result.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExeRtn {
    Success = 1,
    /// Failed, reason unknown.
    Failed = 2,
    /// The request's conditions are wrong.
    BadCondition = 3,
    Timeout = 4,
    Busy = 5,
    SystemFault = 6,
    NoData = 100,
}

fn answer(request: &Packet<'_>, st: u16, code: u16, cp: &str) -> Result<Vec<u8>, EncodeError> {
    let version = request
        .flag
        .map_or(PacketFlag::VERSION_2017, PacketFlag::version);
    PacketSpec {
        qn: request.qn,
        st,
        cn: code,
        pw: request.pw,
        mn: request.mn,
        flag: Some(PacketFlag::new(version, false, false)),
        split: None,
        cp,
    }
    .encode()
}

/// 9011: tells the sender its request was received and whether it will be executed.
pub fn request_answer(request: &Packet<'_>, rtn: QnRtn, st: u16) -> Result<Vec<u8>, EncodeError> {
    answer(
        request,
        st,
        cn::REQUEST_ANSWER,
        &format!("QnRtn={}", rtn as u16),
    )
}

/// 9012: reports the result of executing a request.
pub fn execution_result(
    request: &Packet<'_>,
    rtn: ExeRtn,
    st: u16,
) -> Result<Vec<u8>, EncodeError> {
    answer(
        request,
        st,
        cn::EXECUTION_RESULT,
        &format!("ExeRtn={}", rtn as u16),
    )
}

/// 9014: acknowledges a data packet (sent when its Flag asked for an answer), empty CP.
pub fn data_answer(request: &Packet<'_>, st: u16) -> Result<Vec<u8>, EncodeError> {
    answer(request, st, cn::DATA_ANSWER, "")
}
