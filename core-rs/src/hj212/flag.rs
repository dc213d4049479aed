//! The packet `Flag` bits and the per-value data flags (`xxxxxx-Flag=N`).

use std::fmt;

/// Packet `Flag=`: bits `V5 V4 V3 V2 V1 V0 D A`.
///
/// `A` (bit 0) asks the receiver to answer; `D` (bit 1) says the packet is one part of a split
/// payload and carries `PNUM`/`PNO`; the top six bits are the protocol version (1 = HJ 212-2017,
/// 2 = HJ 212-2025). So 2017 loggers send 4 (no answer), 5 (answer), 6/7 (split).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketFlag(pub u8);

impl PacketFlag {
    pub const ANSWER: u8 = 0b01;
    pub const SPLIT: u8 = 0b10;
    /// Version bits of HJ 212-2017.
    pub const VERSION_2017: u8 = 1;
    /// Version bits of HJ 212-2025.
    pub const VERSION_2025: u8 = 2;

    /// Builds a flag from its parts; `version` keeps its low six bits.
    pub fn new(version: u8, split: bool, answer_requested: bool) -> Self {
        Self(
            ((version & 0x3F) << 2)
                | if split { Self::SPLIT } else { 0 }
                | if answer_requested { Self::ANSWER } else { 0 },
        )
    }

    pub fn version(self) -> u8 {
        self.0 >> 2
    }

    /// `D`: this packet is one part of a split payload.
    pub fn is_split(self) -> bool {
        self.0 & Self::SPLIT != 0
    }

    /// `A`: the sender expects an answer (9011/9014).
    pub fn answer_requested(self) -> bool {
        self.0 & Self::ANSWER != 0
    }
}

/// Data flag of one value (`-Flag=`), HJ 212-2017 table: what the instrument was doing.
///
/// The effect of each flag on validity lives in `cems` (`FlagEffect`), because it is a rule of
/// the data-processing standard (HJ 75 / Part 75), not of the transport protocol.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataFlag {
    /// N: instrument working normally.
    Normal = b'N',
    /// F: the monitored unit (or instrument) is stopped.
    Stopped = b'F',
    /// M: maintenance.
    Maintenance = b'M',
    /// S: manually entered set value.
    Manual = b'S',
    /// D: instrument fault.
    Fault = b'D',
    /// C: calibration.
    Calibration = b'C',
    /// T: above the upper measuring limit.
    OverRange = b'T',
    /// B: communication fault.
    CommFault = b'B',
}

impl DataFlag {
    /// All flags, in the order of the standard's table.
    pub const ALL: [DataFlag; 8] = [
        DataFlag::Normal,
        DataFlag::Stopped,
        DataFlag::Maintenance,
        DataFlag::Manual,
        DataFlag::Fault,
        DataFlag::Calibration,
        DataFlag::OverRange,
        DataFlag::CommFault,
    ];

    /// The flag of a one-letter value. Only the upper-case letters of the standard are accepted:
    /// anything else is kept as text by the parser, with a warning, rather than guessed at.
    pub fn from_letter(s: &str) -> Option<Self> {
        match s.as_bytes() {
            [b'N'] => Some(Self::Normal),
            [b'F'] => Some(Self::Stopped),
            [b'M'] => Some(Self::Maintenance),
            [b'S'] => Some(Self::Manual),
            [b'D'] => Some(Self::Fault),
            [b'C'] => Some(Self::Calibration),
            [b'T'] => Some(Self::OverRange),
            [b'B'] => Some(Self::CommFault),
            _ => None,
        }
    }

    pub fn letter(self) -> char {
        self as u8 as char
    }

    /// Position in [`DataFlag::ALL`] (dense index for counting tables).
    #[inline]
    pub fn index(self) -> usize {
        // The letters differ in their low 5 bits: one table load, where a `match` inlined into
        // the per-sample loops became a jump table.
        usize::from(INDEX_BY_LOW_BITS[usize::from(self as u8 & 31)])
    }
}

const INDEX_BY_LOW_BITS: [u8; 32] = {
    let mut table = [u8::MAX; 32];
    let mut i = 0;
    while i < DataFlag::ALL.len() {
        let slot = (DataFlag::ALL[i] as u8 & 31) as usize;
        assert!(table[slot] == u8::MAX, "two flags share their low 5 bits");
        table[slot] = i as u8;
        i += 1;
    }
    table
};

impl fmt::Display for DataFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

#[cfg(test)]
mod tests {
    use super::DataFlag;

    #[test]
    fn index_is_the_position_in_all() {
        for (i, f) in DataFlag::ALL.into_iter().enumerate() {
            assert_eq!(f.index(), i, "{f}");
        }
    }
}
