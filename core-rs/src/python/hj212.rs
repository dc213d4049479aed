//! `_core.hj212`: bindings of `crate::hj212`.
//!
//! Three shapes for three callers: `decode` gives a whole typed packet as a dict (the `hj212
//! decode` command, tests); `StreamDecoder` turns a TCP byte stream into tuples carrying just what
//! the server acts on (it runs for every read of thousands of connections); `extract` turns many
//! journaled frames into numpy columns for the dataflow. Bad input is data here, not an
//! exception: every reject comes back with a stable reason code and the core's message.

use std::collections::HashMap;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::boundary::compute;
use crate::cems::flags::flag_code;
use crate::hj212::{
    DecoderStats, ExeRtn, FrameDecoder, FrameError, Packet, PacketError, QnRtn, Suffix, Value,
    WarningReason, crc16, data_answer, decode_frame, encode_frame, execution_result,
    fingerprint as packet_fingerprint, request_answer,
};

/// Stable code of a frame error (for metrics labels and JSON).
pub fn frame_reason(e: &FrameError) -> &'static str {
    match e {
        FrameError::Garbage { .. } => "garbage",
        FrameError::NoHeader => "no_header",
        FrameError::BadLengthField { .. } => "bad_length_field",
        FrameError::LengthOutOfRange { .. } => "length_out_of_range",
        FrameError::LengthMismatch { .. } => "length_mismatch",
        FrameError::TooShort { .. } => "too_short",
        FrameError::Truncated { .. } => "truncated",
        FrameError::MissingCrlf { .. } => "missing_crlf",
        FrameError::BadCrcField { .. } => "bad_crc_field",
        FrameError::CrcMismatch { .. } => "crc_mismatch",
        FrameError::TrailingBytes { .. } => "trailing_bytes",
        FrameError::Incomplete { .. } => "incomplete",
    }
}

/// Stable code of a packet error.
pub fn packet_reason(e: &PacketError) -> &'static str {
    match e {
        PacketError::NotUtf8 { .. } => "not_utf8",
        PacketError::MissingCp => "missing_cp",
        PacketError::UnterminatedCp => "unterminated_cp",
        PacketError::BadHeaderItem { .. } => "bad_header_item",
        PacketError::DuplicateHeader(_) => "duplicate_header",
        PacketError::MissingField(_) => "missing_field",
        PacketError::BadNumber { .. } => "bad_number",
        PacketError::BadText { .. } => "bad_text",
        PacketError::BadTime { .. } => "bad_time",
        PacketError::BadSplit(_) => "bad_split",
    }
}

fn warning_reason(r: &WarningReason) -> String {
    match r {
        WarningReason::NotNumeric => "not_numeric".into(),
        WarningReason::UnknownDataFlag => "unknown_data_flag".into(),
        WarningReason::BadTime(e) => format!("bad_time: {e}"),
        WarningReason::NoEquals => "no_equals".into(),
        WarningReason::UnknownHeader => "unknown_header".into(),
    }
}

#[pyfunction(name = "crc16")]
fn crc16_py(data: &[u8]) -> u16 {
    crc16(data)
}

/// Frames a data segment (`QN=...&&`): header, length, CRC, CRLF.
#[pyfunction(name = "encode_frame")]
fn encode_frame_py<'py>(py: Python<'py>, segment: &str) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = encode_frame(segment)?;
    Ok(PyBytes::new(py, &bytes))
}

fn packet_dict<'py>(py: Python<'py>, p: &Packet<'_>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("qn", p.qn)?;
    d.set_item("qn_time", p.qn_time.map(|t| t.to_string()))?;
    d.set_item("st", p.st)?;
    d.set_item("cn", p.cn)?;
    d.set_item("pw", p.pw)?;
    d.set_item("mn", p.mn)?;
    d.set_item("flag", p.flag.map(|f| f.0))?;
    d.set_item("answer_requested", p.answer_requested())?;
    d.set_item("pnum", p.split.map(|s| s.pnum))?;
    d.set_item("pno", p.split.map(|s| s.pno))?;
    d.set_item("data_time", p.data_time.map(|t| t.to_string()))?;
    let fields = PyList::empty(py);
    for f in &p.fields {
        let fd = PyDict::new(py);
        fd.set_item("group", f.group)?;
        fd.set_item("key", f.key)?;
        fd.set_item("code", f.code)?;
        fd.set_item("suffix", f.suffix.as_str())?;
        match f.value {
            Value::Number(v) => {
                fd.set_item("type", "number")?;
                fd.set_item("value", v)?;
            }
            Value::Flag(flag) => {
                fd.set_item("type", "flag")?;
                fd.set_item("value", flag.letter().to_string())?;
            }
            Value::Time(t) => {
                fd.set_item("type", "time")?;
                fd.set_item("value", t.to_string())?;
            }
            Value::Text(t) => {
                fd.set_item("type", "text")?;
                fd.set_item("value", t)?;
            }
        }
        fd.set_item("raw", f.raw)?;
        fields.append(fd)?;
    }
    d.set_item("fields", fields)?;
    let warnings = PyList::empty(py);
    for w in &p.warnings {
        let wd = PyDict::new(py);
        wd.set_item("key", w.key)?;
        wd.set_item("value", w.value)?;
        wd.set_item("reason", warning_reason(&w.reason))?;
        warnings.append(wd)?;
    }
    d.set_item("warnings", warnings)?;
    d.set_item(
        "fingerprint",
        format!("{:016x}", packet_fingerprint(&p.fields)),
    )?;
    Ok(d)
}

/// Checks and parses one complete frame. Returns `{"valid", "reason", "error", "crc", "packet"}`:
/// `packet` is the typed packet when valid, `reason`/`error` say why not otherwise.
#[pyfunction]
fn decode<'py>(py: Python<'py>, frame: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let fail = |reason: &str, error: String| -> PyResult<Bound<'py, PyDict>> {
        d.set_item("valid", false)?;
        d.set_item("reason", reason)?;
        d.set_item("error", error)?;
        d.set_item("crc", py.None())?;
        d.set_item("packet", py.None())?;
        Ok(d.clone())
    };
    let f = match decode_frame(frame) {
        Ok(f) => f,
        Err(e) => return fail(frame_reason(&e), e.to_string()),
    };
    let p = match f.parse() {
        Ok(p) => p,
        Err(e) => return fail(packet_reason(&e), e.to_string()),
    };
    d.set_item("valid", true)?;
    d.set_item("reason", py.None())?;
    d.set_item("error", py.None())?;
    d.set_item("crc", format!("{:04X}", f.crc()))?;
    d.set_item("packet", packet_dict(py, &p)?)?;
    Ok(d)
}

/// Builds the answer to a packet: 9014 (data answer), 9011 (request answer, `rtn` = QnRtn) or
/// 9012 (execution result, `rtn` = ExeRtn), with system type `st`.
#[pyfunction]
#[pyo3(signature = (frame, cn, st=91, rtn=1))]
fn answer<'py>(
    py: Python<'py>,
    frame: &[u8],
    cn: u16,
    st: u16,
    rtn: u16,
) -> PyResult<Bound<'py, PyBytes>> {
    let f = decode_frame(frame)?;
    let p = f.parse()?;
    let bytes = match cn {
        9014 => data_answer(&p, st)?,
        9011 => {
            let r = match rtn {
                1 => QnRtn::Ready,
                2 => QnRtn::Rejected,
                3 => QnRtn::BadPassword,
                4 => QnRtn::BadMn,
                5 => QnRtn::BadSt,
                6 => QnRtn::BadFlag,
                7 => QnRtn::BadQn,
                8 => QnRtn::BadCn,
                9 => QnRtn::BadCrc,
                100 => QnRtn::Unknown,
                _ => {
                    return Err(super::errors::input_error(format!(
                        "QnRtn {rtn} is not defined"
                    )));
                }
            };
            request_answer(&p, r, st)?
        }
        9012 => {
            let r = match rtn {
                1 => ExeRtn::Success,
                2 => ExeRtn::Failed,
                3 => ExeRtn::BadCondition,
                4 => ExeRtn::Timeout,
                5 => ExeRtn::Busy,
                6 => ExeRtn::SystemFault,
                100 => ExeRtn::NoData,
                _ => {
                    return Err(super::errors::input_error(format!(
                        "ExeRtn {rtn} is not defined"
                    )));
                }
            };
            execution_result(&p, r, st)?
        }
        _ => {
            return Err(super::errors::input_error(format!(
                "CN {cn} is not an answer (9011, 9012 or 9014)"
            )));
        }
    };
    Ok(PyBytes::new(py, &bytes))
}

fn stats_dict<'py>(py: Python<'py>, s: DecoderStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("frames", s.frames)?;
    d.set_item("errors", s.errors)?;
    d.set_item("skipped_bytes", s.skipped_bytes)?;
    Ok(d)
}

/// The frames of one TCP connection (see `hj212::FrameDecoder`). `feed` returns one tuple per
/// frame or error, in stream order:
///
/// - `("packet", frame, mn, pw, cn, st, flag)`: a CRC-valid packet (`flag` -1 when absent);
/// - `("bad_packet", frame, reason, message)`: CRC-valid bytes that are not an HJ 212 packet;
/// - `("error", reason, message, bytes)`: bytes that are not a frame (`bytes`: how many).
#[pyclass(module = "carbonstream._core.hj212")]
pub struct StreamDecoder {
    inner: FrameDecoder,
}

fn error_size(e: &FrameError) -> usize {
    match *e {
        FrameError::Garbage { skipped } => skipped,
        FrameError::LengthMismatch { actual, .. } => actual + 12,
        FrameError::TooShort { len } => len,
        FrameError::Truncated { received, .. } => received + 6,
        FrameError::Incomplete { buffered, .. } => buffered,
        FrameError::LengthOutOfRange { .. } | FrameError::BadLengthField { .. } => 2,
        FrameError::CrcMismatch { .. }
        | FrameError::BadCrcField { .. }
        | FrameError::MissingCrlf { .. }
        | FrameError::TrailingBytes { .. }
        | FrameError::NoHeader => 0,
    }
}

#[pymethods]
impl StreamDecoder {
    #[new]
    fn new() -> Self {
        Self {
            inner: FrameDecoder::new(),
        }
    }

    fn feed<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyList>> {
        self.inner.push(data);
        let out = PyList::empty(py);
        while let Some(item) = self.inner.next_frame() {
            match item {
                Ok(frame) => {
                    let raw = frame.bytes();
                    let t: Bound<'py, PyTuple> = match frame.parse() {
                        Ok(p) => PyTuple::new(
                            py,
                            [
                                "packet".into_pyobject(py)?.into_any(),
                                PyBytes::new(py, raw).into_any(),
                                p.mn.into_pyobject(py)?.into_any(),
                                p.pw.into_pyobject(py)?.into_any(),
                                p.cn.into_pyobject(py)?.into_any(),
                                p.st.into_pyobject(py)?.into_any(),
                                p.flag
                                    .map_or(-1i32, |f| i32::from(f.0))
                                    .into_pyobject(py)?
                                    .into_any(),
                            ],
                        )?,
                        Err(e) => PyTuple::new(
                            py,
                            [
                                "bad_packet".into_pyobject(py)?.into_any(),
                                PyBytes::new(py, raw).into_any(),
                                packet_reason(&e).into_pyobject(py)?.into_any(),
                                e.to_string().into_pyobject(py)?.into_any(),
                            ],
                        )?,
                    };
                    out.append(t)?;
                }
                Err(e) => {
                    let t = PyTuple::new(
                        py,
                        [
                            "error".into_pyobject(py)?.into_any(),
                            frame_reason(&e).into_pyobject(py)?.into_any(),
                            e.to_string().into_pyobject(py)?.into_any(),
                            error_size(&e).into_pyobject(py)?.into_any(),
                        ],
                    )?;
                    out.append(t)?;
                }
            }
        }
        Ok(out)
    }

    /// `(buffered, declared)` of the unfinished frame held, or None.
    fn pending(&self) -> Option<(usize, Option<usize>)> {
        self.inner.pending().map(|p| (p.buffered, p.declared))
    }

    /// Gives up on the unfinished frame: `(reason, message, bytes)` or None.
    fn abandon(&mut self) -> Option<(&'static str, String, usize)> {
        self.inner
            .abandon_pending()
            .map(|e| (frame_reason(&e), e.to_string(), error_size(&e)))
    }

    #[getter]
    fn buffered(&self) -> usize {
        self.inner.buffered()
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, self.inner.stats())
    }
}

/// Columns of many frames, for the dataflow (see `extract`).
struct Extracted {
    cn: Vec<u16>,
    pno: Vec<u16>,
    t_ms: Vec<i64>,
    status: Vec<u8>,
    fingerprint: Vec<u64>,
    rtd: Vec<f64>,
    avg: Vec<f64>,
    cou: Vec<f64>,
    flag: Vec<u8>,
    messages: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
}

/// Status codes of `extract`.
const X_OK: u8 = 0;
const X_BAD_FRAME: u8 = 1;
const X_BAD_PACKET: u8 = 2;
const X_NO_TIME: u8 = 3;

fn extract_all(frames: &[Vec<u8>], codes: &[String], offset_min: i32) -> Extracted {
    let (n, k) = (frames.len(), codes.len());
    let mut x = Extracted {
        cn: vec![0; n],
        pno: vec![0; n],
        t_ms: vec![i64::MIN; n],
        status: vec![X_OK; n],
        fingerprint: vec![0; n],
        rtd: vec![f64::NAN; n * k],
        avg: vec![f64::NAN; n * k],
        cou: vec![f64::NAN; n * k],
        flag: vec![0; n * k],
        messages: Vec::new(),
        warnings: Vec::new(),
    };
    let index: HashMap<&str, usize> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    for (i, raw) in frames.iter().enumerate() {
        let frame = match decode_frame(raw) {
            Ok(f) => f,
            Err(e) => {
                x.status[i] = X_BAD_FRAME;
                x.messages.push((i, format!("{}: {e}", frame_reason(&e))));
                continue;
            }
        };
        let p = match frame.parse() {
            Ok(p) => p,
            Err(e) => {
                x.status[i] = X_BAD_PACKET;
                x.messages.push((i, format!("{}: {e}", packet_reason(&e))));
                continue;
            }
        };
        x.cn[i] = p.cn;
        x.pno[i] = p.split.map_or(0, |s| s.pno);
        x.fingerprint[i] = packet_fingerprint(&p.fields);
        match p.data_time {
            Some(t) => x.t_ms[i] = t.to_unix_ms(offset_min),
            None => {
                x.status[i] = X_NO_TIME;
                x.messages
                    .push((i, "no_data_time: packet has no DataTime".into()));
            }
        }
        for f in &p.fields {
            let Some(&c) = index.get(f.code) else {
                continue;
            };
            let at = i * k + c;
            match (f.suffix, f.value) {
                (Suffix::Rtd, v) => x.rtd[at] = v.as_f64().unwrap_or(f64::NAN),
                (Suffix::Avg, v) => x.avg[at] = v.as_f64().unwrap_or(f64::NAN),
                (Suffix::Cou, v) => x.cou[at] = v.as_f64().unwrap_or(f64::NAN),
                (Suffix::Flag, Value::Flag(flag)) => x.flag[at] = flag_code(Some(flag)),
                // An unknown flag letter: the reading's state is unknown, so it is not valid.
                (Suffix::Flag, _) => x.flag[at] = flag_code(Some(crate::hj212::DataFlag::Fault)),
                _ => {}
            }
        }
        if !p.warnings.is_empty() {
            let text = p
                .warnings
                .iter()
                .map(|w| format!("{}={:?} ({})", w.key, w.value, warning_reason(&w.reason)))
                .collect::<Vec<_>>()
                .join("; ");
            x.warnings.push((i, text));
        }
    }
    x
}

type Matrix<'py> = Bound<'py, PyArray2<f64>>;

/// Decodes journaled frames into columns: for each frame its `cn`, `pno` (part number of a split
/// payload, 0 when not split), `t_ms` (DataTime at the
/// site's UTC offset, Unix ms), `status` (0 ok, 1 bad frame, 2 bad packet, 3 no DataTime),
/// value `fingerprint`, and for each of `codes` the `-Rtd`, `-Avg`, `-Cou` values (NaN when
/// absent or not numeric) and the `-Flag` byte (ASCII letter, 0 when absent; an unknown letter
/// reads as D). `messages`/`warnings` map frame index -> text for rejects and odd fields.
#[pyfunction]
fn extract<'py>(
    py: Python<'py>,
    frames: Vec<Vec<u8>>,
    codes: Vec<String>,
    utc_offset_minutes: i32,
) -> PyResult<Bound<'py, PyDict>> {
    let (n, k) = (frames.len(), codes.len());
    let x = compute(py, || {
        Ok::<_, PyErr>(extract_all(&frames, &codes, utc_offset_minutes))
    })?;
    let d = PyDict::new(py);
    d.set_item("cn", x.cn.into_pyarray(py))?;
    d.set_item("pno", x.pno.into_pyarray(py))?;
    d.set_item("t_ms", x.t_ms.into_pyarray(py))?;
    d.set_item("status", x.status.into_pyarray(py))?;
    d.set_item("fingerprint", x.fingerprint.into_pyarray(py))?;
    let m = |v: Vec<f64>| -> PyResult<Matrix<'py>> { v.into_pyarray(py).reshape([n, k]) };
    d.set_item("rtd", m(x.rtd)?)?;
    d.set_item("avg", m(x.avg)?)?;
    d.set_item("cou", m(x.cou)?)?;
    let flag: Bound<'py, PyArray1<u8>> = x.flag.into_pyarray(py);
    d.set_item("flag", flag.reshape([n, k])?)?;
    d.set_item(
        "messages",
        x.messages.into_iter().collect::<HashMap<_, _>>(),
    )?;
    d.set_item(
        "warnings",
        x.warnings.into_iter().collect::<HashMap<_, _>>(),
    )?;
    Ok(d)
}

/// Decodes `frames` `repeat` times without building Python objects; returns the packets parsed.
/// Measures the Rust decoder itself (benchmarks), apart from the cost of Python objects.
#[pyfunction]
fn decode_count(py: Python<'_>, frames: Vec<Vec<u8>>, repeat: usize) -> PyResult<usize> {
    compute(py, || {
        let mut n = 0usize;
        for _ in 0..repeat {
            for f in &frames {
                if let Ok(frame) = decode_frame(f)
                    && let Ok(p) = frame.parse()
                {
                    n += usize::from(!p.fields.is_empty());
                }
            }
        }
        Ok::<_, PyErr>(n)
    })
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "hj212")?;
    m.add_function(wrap_pyfunction!(crc16_py, &m)?)?;
    m.add_function(wrap_pyfunction!(encode_frame_py, &m)?)?;
    m.add_function(wrap_pyfunction!(decode, &m)?)?;
    m.add_function(wrap_pyfunction!(answer, &m)?)?;
    m.add_function(wrap_pyfunction!(extract, &m)?)?;
    m.add_function(wrap_pyfunction!(decode_count, &m)?)?;
    m.add_class::<StreamDecoder>()?;
    parent.add_submodule(&m)?;
    Ok(())
}
