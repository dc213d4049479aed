//! Reassembling payloads split over several packets (`Flag` D bit, `PNUM`/`PNO`).
//!
//! Parts of one payload share `MN`, `CN` and `QN`; they may arrive out of order, twice, or never.
//! State is bounded: at most `max_groups` payloads in progress (the oldest is evicted, and
//! reported, to admit a new one), at most `max_parts` parts each, and every payload is abandoned
//! `timeout_ms` after its first part, measured on the caller's clock (`now_ms`) so the logic is
//! deterministic and testable.

use std::collections::VecDeque;

use super::error::ReassemblyError;
use super::packet::Packet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    pub max_groups: usize,
    pub max_parts: u16,
    pub timeout_ms: i64,
}

impl Default for ReassemblyConfig {
    /// 64 payloads in flight, 64 parts each (64 x 1 KiB x 64 = 4 MiB worst case), 60 s.
    fn default() -> Self {
        Self {
            max_groups: 64,
            max_parts: 64,
            timeout_ms: 60_000,
        }
    }
}

/// Identity of a split payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SplitKey {
    pub mn: String,
    pub cn: u16,
    /// `QN`, empty when the packets carry none.
    pub qn: String,
}

/// A complete payload: the data segments of its parts in `PNO` order (parse each with
/// [`Packet::parse`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    pub key: SplitKey,
    pub parts: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbandonReason {
    /// `timeout_ms` passed since the first part.
    Timeout,
    /// Pushed out by a newer payload when `max_groups` were in progress.
    Evicted,
}

/// A payload given up on, with what was missing (for logs; its parts are dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abandoned {
    pub key: SplitKey,
    pub pnum: u16,
    pub missing: Vec<u16>,
    pub reason: AbandonReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartOutcome {
    /// This part completed the payload.
    Complete(Assembled),
    /// Stored; `received` of `total` parts are in.
    Pending { received: u16, total: u16 },
    /// Same part with the same content again (or a part of a payload already completed): ignored.
    Duplicate,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartResult {
    pub outcome: PartOutcome,
    /// A payload evicted to make room for this one.
    pub evicted: Option<Abandoned>,
}

#[derive(Clone, Debug)]
struct Group {
    key: SplitKey,
    parts: Vec<Option<String>>,
    received: u16,
    first_ms: i64,
}

impl Group {
    fn abandoned(self, reason: AbandonReason) -> Abandoned {
        let missing = (1..)
            .zip(&self.parts)
            .filter(|(_, p)| p.is_none())
            .map(|(i, _)| i)
            .collect();
        Abandoned {
            key: self.key,
            pnum: self.parts.len() as u16,
            missing,
            reason,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Reassembler {
    config: ReassemblyConfig,
    groups: Vec<Group>,
    /// Keys of recently completed payloads, so late repeats are recognised as duplicates.
    completed: VecDeque<SplitKey>,
}

impl Reassembler {
    pub fn new(config: ReassemblyConfig) -> Self {
        Self {
            config,
            groups: Vec::new(),
            completed: VecDeque::new(),
        }
    }

    /// Adds one part. `now_ms` is the caller's clock (receive time).
    pub fn add(&mut self, packet: &Packet<'_>, now_ms: i64) -> Result<PartResult, ReassemblyError> {
        let split = packet.split.ok_or(ReassemblyError::NotSplit)?;
        if split.pnum > self.config.max_parts {
            return Err(ReassemblyError::TooManyParts {
                pnum: split.pnum,
                max: self.config.max_parts,
            });
        }
        let key = SplitKey {
            mn: packet.mn.to_owned(),
            cn: packet.cn,
            qn: packet.qn.unwrap_or("").to_owned(),
        };
        if self.completed.contains(&key) {
            return Ok(PartResult {
                outcome: PartOutcome::Duplicate,
                evicted: None,
            });
        }
        let mut evicted = None;
        let gi = match self.groups.iter().position(|g| g.key == key) {
            Some(i) => {
                let expected = self.groups[i].parts.len() as u16;
                if expected != split.pnum {
                    return Err(ReassemblyError::InconsistentTotal {
                        expected,
                        got: split.pnum,
                    });
                }
                i
            }
            None => {
                if self.groups.len() >= self.config.max_groups.max(1) {
                    let oldest = (0..self.groups.len())
                        .min_by_key(|&i| self.groups[i].first_ms)
                        .expect("groups is not empty");
                    evicted = Some(self.groups.remove(oldest).abandoned(AbandonReason::Evicted));
                }
                self.groups.push(Group {
                    key: key.clone(),
                    parts: vec![None; usize::from(split.pnum)],
                    received: 0,
                    first_ms: now_ms,
                });
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[gi];
        let slot = &mut group.parts[usize::from(split.pno - 1)];
        let segment = packet.segment();
        match slot {
            Some(s) if s == segment => {
                return Ok(PartResult {
                    outcome: PartOutcome::Duplicate,
                    evicted,
                });
            }
            Some(_) => return Err(ReassemblyError::ConflictingPart { pno: split.pno }),
            None => {
                *slot = Some(segment.to_owned());
                group.received += 1;
            }
        }
        let outcome = if group.received == split.pnum {
            let g = self.groups.remove(gi);
            if self.completed.len() >= self.config.max_groups.max(1) {
                self.completed.pop_front();
            }
            self.completed.push_back(g.key.clone());
            PartOutcome::Complete(Assembled {
                key: g.key,
                parts: g
                    .parts
                    .into_iter()
                    .map(|p| p.expect("all parts received"))
                    .collect(),
            })
        } else {
            PartOutcome::Pending {
                received: group.received,
                total: split.pnum,
            }
        };
        Ok(PartResult { outcome, evicted })
    }

    /// Abandons payloads whose first part is `timeout_ms` or more old at `now_ms`.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Abandoned> {
        let timeout = self.config.timeout_ms;
        let (old, keep): (Vec<Group>, Vec<Group>) = std::mem::take(&mut self.groups)
            .into_iter()
            .partition(|g| now_ms.saturating_sub(g.first_ms) >= timeout);
        self.groups = keep;
        old.into_iter()
            .map(|g| g.abandoned(AbandonReason::Timeout))
            .collect()
    }

    /// Payloads in progress.
    pub fn in_progress(&self) -> usize {
        self.groups.len()
    }
}
