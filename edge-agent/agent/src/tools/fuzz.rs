//! `edge-agent fuzz`: generated hostile input through the configuration parser and the plate grammar,
//! counting panics and broken invariants (`errors`). Alternating:
//! - the configuration: the embedded default with lines replaced by hostile values (non-finite and huge
//!   numbers, negative counts, long and control-character strings, wrong types), dropped, duplicated or
//!   mutated byte-wise, then parsed, validated and turned into scenes as `run` does; an accepted config whose
//!   scenes then fail is an error;
//! - the plate grammar: strings of plate characters, confusables, separators and junk through the OCR parse
//!   and the typed parse; a plate whose printed form does not parse back to itself is an error.

use crate::config::{AgentConfig, Overrides, DEFAULT_TOML};

/// What a run saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct FuzzCounts {
    pub inputs: u64,
    pub panics: u64,
    pub errors: u64,
    pub refused: u64,
}

const HOSTILE_TOML: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e309",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "\"\"",
    "\"\\u0000\"",
    "\"a\\nb\"",
    "[]",
    "{}",
    "true",
    "\"rtsp//x\"",
    "\"../../etc/passwd\"",
    "[[0, 0], [0, 0]]",
    "[[1e30, -1e30], [nan, inf]]",
    "[0, 0, 0, 0]",
    "\"99:99\"",
    "\"24:00\"",
    "0.0",
    "1.0000001",
    "[",
];

fn config_input(rng: &mut fastrand::Rng) -> String {
    let mut lines: Vec<String> = DEFAULT_TOML.lines().map(str::to_owned).collect();
    for _ in 0..rng.usize(1..=4) {
        let at = rng.usize(..lines.len());
        match rng.u8(..6) {
            0..=2 => {
                if let Some((key, _)) = lines[at].split_once('=') {
                    let value = if rng.u8(..8) == 0 {
                        format!("\"{}\"", "x".repeat(rng.usize(100..20_000)))
                    } else {
                        HOSTILE_TOML[rng.usize(..HOSTILE_TOML.len())].to_owned()
                    };
                    lines[at] = format!("{key}= {value}");
                }
            }
            3 => {
                lines.remove(at);
            }
            4 => {
                let copy = lines[at].clone();
                lines.insert(at, copy);
            }
            _ => {
                let mut bytes = lines[at].clone().into_bytes();
                if !bytes.is_empty() {
                    let i = rng.usize(..bytes.len());
                    bytes[i] = rng.u8(32..127);
                }
                lines[at] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    lines.join("\n")
}

/// `Ok(true)` accepted, `Ok(false)` refused, `Err` a broken invariant.
fn config_case(text: &str) -> Result<bool, String> {
    let Ok(parsed) = AgentConfig::parse(text, "fuzz") else { return Ok(false) };
    let Ok(config) = parsed.finish(&Overrides::default()) else { return Ok(false) };
    config.validated_scenes().map_err(|e| format!("accepted config whose scenes fail: {e}"))?;
    let _ = config.version();
    Ok(true)
}

const PLATE_CHARS: &[u8] = b"0123456789ABCDEFGHKLMNPRSTUVXYZOQIJW-./ \n";

fn plate_input(rng: &mut fastrand::Rng) -> String {
    let n = rng.usize(0..16);
    let mut s: String = (0..n).map(|_| PLATE_CHARS[rng.usize(..PLATE_CHARS.len())] as char).collect();
    if rng.u8(..10) == 0 {
        s.push(['Đ', 'đ', '\u{202e}', '\u{0}', '١', 'Ａ'][rng.usize(..6)]);
    }
    s
}

fn plate_case(text: &str) -> Result<bool, String> {
    let rows: Vec<&str> = text.split(['/', '\n']).collect();
    let mut accepted = false;
    for plate in [te_plate::parse(&rows, None), te_plate::parse_typed(text)].into_iter().flatten() {
        accepted = true;
        let printed = plate.to_string();
        match te_plate::parse_typed(&printed) {
            Ok(again) if again == plate => {}
            other => return Err(format!("{text:?} -> {printed:?} does not parse back: {other:?}")),
        }
    }
    Ok(accepted)
}

/// Runs `inputs` generated inputs (seeded).
pub fn run(inputs: u64, seed: u64) -> FuzzCounts {
    let first_panic: std::sync::Arc<std::sync::Mutex<bool>> = Default::default();
    let previous_hook = std::panic::take_hook();
    {
        let first_panic = first_panic.clone();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut seen) = first_panic.lock() {
                if !*seen {
                    eprintln!("panic: {info}");
                    *seen = true;
                }
            }
        }));
    }
    let mut counts = FuzzCounts::default();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut errors_shown = 0;
    for i in 0..inputs {
        counts.inputs += 1;
        let mut case_rng = fastrand::Rng::with_seed(rng.u64(..));
        let outcome = if i % 2 == 0 {
            let text = config_input(&mut case_rng);
            std::panic::catch_unwind(|| config_case(&text))
        } else {
            let text = plate_input(&mut case_rng);
            std::panic::catch_unwind(|| plate_case(&text))
        };
        match outcome {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => counts.refused += 1,
            Ok(Err(why)) => {
                counts.errors += 1;
                if errors_shown < 5 {
                    eprintln!("error: {why}");
                    errors_shown += 1;
                }
            }
            Err(_) => counts.panics += 1,
        }
    }
    std::panic::set_hook(previous_hook);
    counts
}

/// `edge-agent fuzz`: runs and prints the counts; false when a panic or a broken invariant was found.
pub fn report(inputs: u64, seed: u64) -> bool {
    let started = std::time::Instant::now();
    let c = run(inputs, seed);
    println!("agent fuzz: config parser and plate grammar, {:.1} s", started.elapsed().as_secs_f32());
    println!("inputs={} panics={} errors={} refused={}", c.inputs, c.panics, c.errors, c.refused);
    c.panics + c.errors == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_short_fuzz_run_finds_no_panic_and_no_broken_invariant() {
        let counts = super::run(600, 3);
        assert_eq!((counts.panics, counts.errors), (0, 0), "{counts:?}");
        assert!(counts.refused > 100, "{counts:?}");
    }
}
