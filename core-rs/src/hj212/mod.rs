//! HJ 212-2017: the data-logger protocol of Chinese CEMS. Bytes in, records out.
//!
//! Layers, each usable alone:
//! - [`FrameDecoder`] turns a TCP byte stream into CRC-checked [`Frame`]s (split, glued and
//!   garbled reads handled; bounded memory); [`decode_frame`] checks one complete frame.
//! - [`Packet::parse`] types the header (`QN ST CN PW MN Flag PNUM PNO`) and the CP fields,
//!   borrowing every string from the frame.
//! - [`Reassembler`] joins split payloads; [`request_answer`] / [`execution_result`] /
//!   [`data_answer`] build the 9011/9012/9014 replies; [`PacketSpec`] and [`CpBuilder`] build any
//!   packet.
//!
//! Times are the logger's local wall clock ([`CivilDateTime`]); converting to an instant needs the
//! site's UTC offset, which only the caller knows.
//!
//! Facts and test vectors: `reference/hj212/README.md`.

pub mod answer;
pub mod codes;
pub mod cp;
pub mod crc;
pub mod encode;
pub mod error;
pub mod flag;
pub mod frame;
pub mod packet;
pub mod reassembly;
mod scan;
pub mod stream;
pub mod time;

pub use answer::{ExeRtn, QnRtn, data_answer, execution_result, request_answer};
pub use cp::{Field, Suffix, Value, Warning, WarningReason, fingerprint};
pub use crc::crc16;
pub use encode::{CpBuilder, PacketSpec};
pub use error::{EncodeError, FrameError, PacketError, ReassemblyError};
pub use flag::{DataFlag, PacketFlag};
pub use frame::{Frame, MAX_FRAME_LEN, MAX_SEGMENT_LEN, decode_frame, encode_frame};
pub use packet::{Packet, Split};
pub use reassembly::{
    AbandonReason, Abandoned, Assembled, PartOutcome, PartResult, Reassembler, ReassemblyConfig,
    SplitKey,
};
pub use stream::{DecoderStats, FrameDecoder, PendingFrame};
pub use time::{CHINA_STANDARD_TIME_OFFSET_MINUTES, CivilDateTime, TimeError};
