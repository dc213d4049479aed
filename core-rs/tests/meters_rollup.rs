//! Roll-up sums: missing stays missing, counts say how many rows contributed, order is fixed.

use carbonstream_core::meters::{RollupError, grouped_nansum};
use proptest::prelude::*;

const NAN: f64 = f64::NAN;

#[test]
fn sums_groups_skipping_missing_and_counts_contributors() {
    // 4 rows x 3 periods; rows 0 and 2 form group 1, row 1 group 0, row 3 is left out.
    let values = [
        1.0, NAN, 3.0, 10.0, 20.0, NAN, 0.5, NAN, 4.0, 99.0, 99.0, 99.0,
    ];
    let r = grouped_nansum(&values, 3, &[1, 0, 1, u32::MAX], 2).unwrap();
    assert_eq!(r.counts, vec![1, 1, 0, 2, 0, 2]);
    assert_eq!(&r.sums[..2], &[10.0, 20.0]);
    assert!(r.sums[2].is_nan(), "no row had a value: missing, not zero");
    assert_eq!(r.sums[3], 1.5);
    assert!(r.sums[4].is_nan());
    assert_eq!(r.sums[5], 7.0);
}

#[test]
fn shape_and_group_errors_name_the_problem() {
    assert_eq!(
        grouped_nansum(&[1.0; 5], 3, &[0, 0], 1).unwrap_err(),
        RollupError::Shape {
            values: 5,
            rows: 2,
            cols: 3
        }
    );
    assert_eq!(
        grouped_nansum(&[1.0; 2], 1, &[0, 3], 2).unwrap_err(),
        RollupError::GroupOutOfRange {
            row: 1,
            group: 3,
            groups: 2
        }
    );
}

proptest! {
    #[test]
    fn equals_a_plain_per_group_sum(
        rows in prop::collection::vec((0u32..5, prop::collection::vec(prop::option::of(-1e6f64..1e6), 4)), 0..40)
    ) {
        let groups = 5;
        let values: Vec<f64> = rows.iter().flat_map(|(_, v)| v.iter().map(|x| x.unwrap_or(NAN))).collect();
        let group_of_row: Vec<u32> = rows.iter().map(|(g, _)| *g).collect();
        let r = grouped_nansum(&values, 4, &group_of_row, groups).unwrap();
        for g in 0..groups {
            for c in 0..4 {
                let members: Vec<f64> = rows
                    .iter()
                    .filter(|(rg, _)| *rg as usize == g)
                    .filter_map(|(_, v)| v[c])
                    .collect();
                prop_assert_eq!(r.counts[g * 4 + c] as usize, members.len());
                let expected: f64 = members.iter().sum();
                let got = r.sums[g * 4 + c];
                if members.is_empty() {
                    prop_assert!(got.is_nan());
                } else {
                    prop_assert_eq!(got, expected, "row-order summation is exact to the same order");
                }
            }
        }
    }
}
