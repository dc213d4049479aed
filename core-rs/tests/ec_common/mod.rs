//! Readers for the EddyPro reference data used by the `ec_*` acceptance tests: Campbell TOA5 raw
//! files, ICOS raw CSV, EddyPro `.metadata`, full-output and FLUXNET CSV, planar-fit and spectral
//! assessment reports. Expected values are always read from these files, never typed in.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;

pub mod de_hoh;
pub mod synth;
pub mod toa5;

pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/ec");

pub fn path(rel: &str) -> String {
    format!("{DATA}/{rel}")
}

/// Splits a CSV line on commas outside double quotes and strips the quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in line.trim_end_matches(['\r', '\n']).chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out
}

fn parse_f32(s: &str) -> f32 {
    match s.trim() {
        "NAN" | "NaN" | "nan" | "" | "-9999" => f32::NAN,
        t => t.parse().unwrap_or(f32::NAN),
    }
}

/// Columns of a numeric table, by header name.
pub struct Table {
    pub columns: HashMap<String, Vec<f32>>,
    pub rows: usize,
}

impl Table {
    pub fn col(&self, name: &str) -> &[f32] {
        self.columns
            .get(name)
            .unwrap_or_else(|| panic!("column {name} missing"))
    }
}

fn numeric_table(header: &[String], lines: &[&str]) -> Table {
    let mut columns: HashMap<String, Vec<f32>> = header
        .iter()
        .map(|h| (h.clone(), Vec::with_capacity(lines.len())))
        .collect();
    for line in lines {
        let cells = split_csv(line);
        for (h, c) in header.iter().zip(cells.iter()) {
            columns.get_mut(h).unwrap().push(parse_f32(c));
        }
    }
    Table {
        columns,
        rows: lines.len(),
    }
}

/// Campbell TOA5: line 1 file info, line 2 names, line 3 units, line 4 processing, then data.
pub fn read_toa5(rel: &str) -> Table {
    let text = fs::read_to_string(path(rel)).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let header = split_csv(lines[1]);
    numeric_table(&header, &lines[4..])
}

/// Plain CSV with one header line.
pub fn read_csv(rel: &str) -> Table {
    let text = fs::read_to_string(path(rel)).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let header = split_csv(lines[0]);
    numeric_table(&header, &lines[1..])
}

/// Rows of a CSV as name -> text maps; `header_line` is the 0-based line holding the names and
/// data start after `skip` further lines.
pub fn read_records(rel: &str, header_line: usize, skip: usize) -> Vec<HashMap<String, String>> {
    let text = fs::read_to_string(path(rel)).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let header = split_csv(lines[header_line]);
    lines[header_line + 1 + skip..]
        .iter()
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(split_csv(l).into_iter().map(|s| s.trim().to_string()))
                .collect()
        })
        .collect()
}

/// EddyPro full output: group line, names, units, data.
pub fn read_full_output(rel: &str) -> Vec<HashMap<String, String>> {
    read_records(rel, 1, 1)
}

pub fn num(rec: &HashMap<String, String>, key: &str) -> f64 {
    rec.get(key)
        .unwrap_or_else(|| panic!("reference has no {key}"))
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number: {:?}", rec[key]))
}

/// `key=value` lines of an EddyPro .metadata (ini) file.
pub fn read_ini(rel: &str) -> HashMap<String, String> {
    fs::read_to_string(path(rel))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub fn ini_num(ini: &HashMap<String, String>, key: &str) -> f64 {
    ini[key].parse().unwrap()
}

/// Relative difference |a - b| / |b|.
pub fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

/// Prints a comparison row (visible with --nocapture) and returns the relative difference.
pub fn report(case: &str, name: &str, ours: f64, theirs: f64) -> f64 {
    let r = rel(ours, theirs);
    println!(
        "{case:<10} {name:<22} ours {ours:>14.6}  eddypro {theirs:>14.6}  rel {:>8.4} %",
        100.0 * r
    );
    r
}
