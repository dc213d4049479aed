//! The regular time grid every carbonstream product is stored on.
//!
//! Products are (stream, time) arrays whose time axis is a fixed-length period counted from a fixed
//! origin. A cell is addressed by its period index ("slot"), so writing the same sample twice lands in
//! the same cell: this is what makes replays after a crash idempotent.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GridError {
    #[error("grid step must be positive, got {0} ns")]
    NonPositiveStep(i64),
}

/// Periods of `step_ns` nanoseconds starting at `origin_ns` (UTC epoch nanoseconds), labelled by start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    origin_ns: i64,
    step_ns: i64,
}

impl Grid {
    pub fn new(origin_ns: i64, step_ns: i64) -> Result<Self, GridError> {
        if step_ns <= 0 {
            return Err(GridError::NonPositiveStep(step_ns));
        }
        Ok(Self { origin_ns, step_ns })
    }

    pub fn origin_ns(&self) -> i64 {
        self.origin_ns
    }

    pub fn step_ns(&self) -> i64 {
        self.step_ns
    }

    /// Index of the period containing `t_ns`. Periods are half-open: `[start, start + step)`.
    /// Computed in i128 so that timestamps far from the origin cannot overflow; saturates at the
    /// i64 range (only reachable with a 1 ns step and timestamps at opposite ends of time).
    #[inline]
    pub fn slot_of(&self, t_ns: i64) -> i64 {
        // i64 arithmetic in the normal case: i128 division is a slow library call, and this is
        // on the per-reading path of every kernel.
        match t_ns.checked_sub(self.origin_ns) {
            Some(offset) => offset.div_euclid(self.step_ns),
            None => {
                let offset = i128::from(t_ns) - i128::from(self.origin_ns);
                let slot = offset.div_euclid(i128::from(self.step_ns));
                slot.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
            }
        }
    }

    /// `slot_of(t_ns)` for a time usually in period `hint` or the next one (consecutive readings):
    /// a multiplication and two comparisons instead of a division.
    #[inline]
    pub fn slot_of_near(&self, t_ns: i64, hint: i64) -> i64 {
        if let Some(d) = t_ns.checked_sub(self.slot_start(hint)) {
            if (0..self.step_ns).contains(&d) {
                return hint;
            }
            if (self.step_ns..self.step_ns.saturating_mul(2)).contains(&d) {
                return hint + 1;
            }
        }
        self.slot_of(t_ns)
    }

    pub fn slot_start(&self, slot: i64) -> i64 {
        self.origin_ns
            .saturating_add(slot.saturating_mul(self.step_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_half_open_and_floor_before_origin() {
        let g = Grid::new(1_000, 10).unwrap();
        assert_eq!(g.slot_of(1_000), 0);
        assert_eq!(g.slot_of(1_009), 0);
        assert_eq!(g.slot_of(1_010), 1);
        assert_eq!(g.slot_of(999), -1);
        assert_eq!(g.slot_start(3), 1_030);
    }

    #[test]
    fn slot_near_a_hint_equals_slot_of() {
        let g = Grid::new(1_000, 10).unwrap();
        for t in [
            985,
            999,
            1_000,
            1_009,
            1_010,
            1_019,
            1_020,
            1_055,
            i64::MIN,
            i64::MAX,
        ] {
            for hint in [-2, -1, 0, 1, 2, 5, i64::MAX / 20] {
                assert_eq!(g.slot_of_near(t, hint), g.slot_of(t), "t {t} hint {hint}");
            }
        }
    }

    #[test]
    fn rejects_non_positive_step() {
        assert_eq!(Grid::new(0, 0), Err(GridError::NonPositiveStep(0)));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let g = Grid::new(i64::MAX, 1).unwrap();
        assert_eq!(g.slot_of(i64::MIN), i64::MIN);
        let minute = Grid::new(0, 60_000_000_000).unwrap();
        assert_eq!(
            minute.slot_of(i64::MIN),
            i64::MIN.div_euclid(60_000_000_000)
        );
    }
}
