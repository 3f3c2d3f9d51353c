//! In-memory pacing of repeated attempts (logins): attempts per address in the current minute, and which
//! refusals were already audited. Both tables are pruned, so a spray of addresses cannot grow them without
//! bound. The accounts feature decides the limits.

use std::net::IpAddr;

/// Attempts per address and audited refusals.
#[derive(Debug, Default)]
pub struct Pacing {
    /// Per address: when its minute began, attempts in it, whether its refusal is audited.
    attempts: std::sync::Mutex<std::collections::HashMap<IpAddr, (std::time::Instant, u32, bool)>>,
    /// (name, origin) -> when its lockout refusal was last audited.
    throttled: std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
}

const PACING_TABLE_MAX: usize = 10_000;

impl Pacing {
    /// `None` when the attempt may go on; `Some(first)` when it is over the rate, `first` telling whether
    /// this is the first refusal of the minute (to be audited).
    pub fn over_rate(&self, ip: IpAddr, per_minute: u32) -> Option<bool> {
        let now = std::time::Instant::now();
        let minute = std::time::Duration::from_secs(60);
        let mut table = self.attempts.lock().ok()?;
        if table.len() > PACING_TABLE_MAX {
            table.retain(|_, (start, _, _)| now.duration_since(*start) < minute);
        }
        let entry = table.entry(ip).or_insert((now, 0, false));
        if now.duration_since(entry.0) >= minute {
            *entry = (now, 0, false);
        }
        if entry.1 >= per_minute {
            let first = !entry.2;
            entry.2 = true;
            return Some(first);
        }
        entry.1 += 1;
        None
    }

    /// Whether a refusal of `name` from `origin` should be audited (once per `period`).
    pub fn audit_once(&self, name: &str, origin: &str, period: std::time::Duration) -> bool {
        let now = std::time::Instant::now();
        let Ok(mut table) = self.throttled.lock() else { return true };
        if table.len() > PACING_TABLE_MAX {
            table.retain(|_, at| now.duration_since(*at) < period);
        }
        let key = (name.to_owned(), origin.to_owned());
        match table.get(&key) {
            Some(at) if now.duration_since(*at) < period => false,
            _ => {
                table.insert(key, now);
                true
            }
        }
    }
}
