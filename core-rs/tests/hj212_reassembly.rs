//! Split payloads (PNUM/PNO): order, duplicates, conflicts, timeouts and bounded state.

use carbonstream_core::hj212::{
    AbandonReason, Packet, PacketFlag, PacketSpec, PartOutcome, Reassembler, ReassemblyConfig,
    ReassemblyError, Split,
};
use proptest::prelude::*;

fn part(qn: &str, mn: &str, pnum: u16, pno: u16, cp: &str) -> String {
    PacketSpec {
        qn: Some(qn),
        st: 31,
        cn: 2051,
        pw: "123456",
        mn,
        flag: Some(PacketFlag::new(1, true, false)),
        split: Some(Split { pnum, pno }),
        cp,
    }
    .segment()
    .unwrap()
}

const QN: &str = "20240101120000000";

fn cfg(max_groups: usize) -> ReassemblyConfig {
    ReassemblyConfig {
        max_groups,
        max_parts: 16,
        timeout_ms: 1_000,
    }
}

#[test]
fn parts_out_of_order_complete_in_pno_order() {
    let segs: Vec<String> = (1..=3)
        .map(|i| {
            part(
                QN,
                "M1",
                3,
                i,
                &format!("DataTime=20240101120000;a2102{i}-Avg={i}"),
            )
        })
        .collect();
    let mut r = Reassembler::new(cfg(4));
    let add = |r: &mut Reassembler, i: usize| r.add(&Packet::parse(&segs[i]).unwrap(), 0).unwrap();
    assert_eq!(
        add(&mut r, 2).outcome,
        PartOutcome::Pending {
            received: 1,
            total: 3
        }
    );
    assert_eq!(
        add(&mut r, 0).outcome,
        PartOutcome::Pending {
            received: 2,
            total: 3
        }
    );
    let PartOutcome::Complete(done) = add(&mut r, 1).outcome else {
        panic!("expected complete")
    };
    assert_eq!(done.parts, segs);
    assert_eq!(
        (done.key.mn.as_str(), done.key.cn, done.key.qn.as_str()),
        ("M1", 2051, QN)
    );
    assert_eq!(r.in_progress(), 0);
    // Each part parses back, in order.
    let avgs: Vec<f64> = done
        .parts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = Packet::parse(s).unwrap();
            p.number(
                &format!("a2102{}", i + 1),
                carbonstream_core::hj212::Suffix::Avg,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(avgs, vec![1.0, 2.0, 3.0]);
    // A late repeat of a completed payload is a duplicate, not a new payload.
    assert_eq!(add(&mut r, 1).outcome, PartOutcome::Duplicate);
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn duplicates_are_ignored_and_conflicts_rejected() {
    let a = part(QN, "M1", 2, 1, "a=1");
    let a2 = part(QN, "M1", 2, 1, "a=2");
    let mut r = Reassembler::new(cfg(4));
    r.add(&Packet::parse(&a).unwrap(), 0).unwrap();
    assert_eq!(
        r.add(&Packet::parse(&a).unwrap(), 1).unwrap().outcome,
        PartOutcome::Duplicate
    );
    assert_eq!(
        r.add(&Packet::parse(&a2).unwrap(), 2),
        Err(ReassemblyError::ConflictingPart { pno: 1 })
    );
    let b = part(QN, "M1", 3, 2, "b=1");
    assert_eq!(
        r.add(&Packet::parse(&b).unwrap(), 2),
        Err(ReassemblyError::InconsistentTotal {
            expected: 2,
            got: 3
        })
    );
}

#[test]
fn payloads_are_keyed_by_mn_cn_and_qn() {
    let mut r = Reassembler::new(cfg(4));
    r.add(&Packet::parse(&part(QN, "M1", 2, 1, "a=1")).unwrap(), 0)
        .unwrap();
    r.add(&Packet::parse(&part(QN, "M2", 2, 1, "a=1")).unwrap(), 0)
        .unwrap();
    r.add(
        &Packet::parse(&part("20240101120000001", "M1", 2, 1, "a=1")).unwrap(),
        0,
    )
    .unwrap();
    assert_eq!(r.in_progress(), 3);
}

#[test]
fn timeouts_use_the_callers_clock_and_name_missing_parts() {
    let mut r = Reassembler::new(cfg(4));
    r.add(
        &Packet::parse(&part(QN, "M1", 4, 2, "a=1")).unwrap(),
        10_000,
    )
    .unwrap();
    assert!(r.expire(10_999).is_empty());
    let gone = r.expire(11_000);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].missing, vec![1, 3, 4]);
    assert_eq!((gone[0].pnum, gone[0].reason), (4, AbandonReason::Timeout));
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn state_is_bounded_the_oldest_payload_is_evicted_and_reported() {
    let mut r = Reassembler::new(cfg(2));
    for (i, t) in [(0u16, 5), (1, 1), (2, 9)] {
        let qn = format!("2024010112000000{i}");
        let res = r
            .add(&Packet::parse(&part(&qn, "M1", 2, 1, "a=1")).unwrap(), t)
            .unwrap();
        if i == 2 {
            let ev = res.evicted.expect("one payload evicted");
            assert_eq!(ev.key.qn, "20240101120000001", "the one first seen at t=1");
            assert_eq!(ev.reason, AbandonReason::Evicted);
        } else {
            assert!(res.evicted.is_none());
        }
    }
    assert_eq!(r.in_progress(), 2);
    let too_big = part(QN, "M1", 17, 1, "a=1");
    assert_eq!(
        r.add(&Packet::parse(&too_big).unwrap(), 0),
        Err(ReassemblyError::TooManyParts { pnum: 17, max: 16 })
    );
    let not_split = "ST=31;CN=2011;PW=1;MN=M;CP=&&&&";
    assert_eq!(
        r.add(&Packet::parse(not_split).unwrap(), 0),
        Err(ReassemblyError::NotSplit)
    );
}

proptest! {
    /// Any arrival order, with any parts repeated, completes exactly once with parts in order.
    #[test]
    fn any_order_with_repeats_completes_once(
        n in 1u16..10,
        order in prop::collection::vec(0usize..100, 1..40),
    ) {
        let segs: Vec<String> = (1..=n).map(|i| part(QN, "M", n, i, &format!("x={i}"))).collect();
        // Every part at least once, in a shuffled order, with repeats.
        let mut seq: Vec<usize> = order.iter().map(|&i| i % n as usize).collect();
        seq.extend(0..n as usize);
        let mut r = Reassembler::new(cfg(4));
        let mut completes = 0;
        for &i in &seq {
            match r.add(&Packet::parse(&segs[i]).unwrap(), 0).unwrap().outcome {
                PartOutcome::Complete(a) => {
                    completes += 1;
                    prop_assert_eq!(&a.parts, &segs);
                }
                PartOutcome::Pending { .. } | PartOutcome::Duplicate => {}
            }
        }
        prop_assert_eq!(completes, 1);
        prop_assert_eq!(r.in_progress(), 0);
    }
}
