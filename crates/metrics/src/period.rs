//! Reporting periods: UTC calendar months (the default), ISO weeks (starting Monday) or calendar
//! quarters, identified by their first day.
//!
//! Civil-date arithmetic follows Howard Hinnant's `days_from_civil` / `civil_from_days`
//! algorithms (proleptic Gregorian calendar, day 0 = 1970-01-01).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The length of a reporting period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Week,
    #[default]
    Month,
    Quarter,
}

impl Granularity {
    /// The spelling used on the command line and in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Week => "week",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
        }
    }

    /// The inverse of [`Granularity::as_str`].
    pub fn parse(s: &str) -> Option<Granularity> {
        [Granularity::Week, Granularity::Month, Granularity::Quarter]
            .into_iter()
            .find(|g| g.as_str() == s)
    }

    /// The period containing `day` (days since 1970-01-01).
    pub fn period_of(self, day: i32) -> Period {
        match self {
            // 1970-01-01 was a Thursday; Monday 1969-12-29 is day −3.
            Granularity::Week => Period {
                start: day - (day + 3).rem_euclid(7),
            },
            Granularity::Month => {
                let (y, m, _) = civil_from_days(day);
                Period {
                    start: days_from_civil(y, m, 1),
                }
            }
            Granularity::Quarter => {
                let (y, m, _) = civil_from_days(day);
                Period {
                    start: days_from_civil(y, (m - 1) / 3 * 3 + 1, 1),
                }
            }
        }
    }

    /// The period `k` periods after `p` (before, for negative `k`).
    pub fn shift(self, p: Period, k: i32) -> Period {
        match self {
            Granularity::Week => Period {
                start: p.start + 7 * k,
            },
            Granularity::Month | Granularity::Quarter => {
                let months = if self == Granularity::Month { k } else { 3 * k };
                let (y, m, _) = civil_from_days(p.start);
                let idx = y * 12 + (m as i32 - 1) + months;
                Period {
                    start: days_from_civil(idx.div_euclid(12), (idx.rem_euclid(12) + 1) as u32, 1),
                }
            }
        }
    }

    /// Number of whole periods from `a` to `b` (b − a).
    pub fn distance(self, a: Period, b: Period) -> i32 {
        match self {
            Granularity::Week => (b.start - a.start).div_euclid(7),
            Granularity::Month | Granularity::Quarter => {
                let (ya, ma, _) = civil_from_days(a.start);
                let (yb, mb, _) = civil_from_days(b.start);
                let months = (yb - ya) * 12 + mb as i32 - ma as i32;
                if self == Granularity::Month {
                    months
                } else {
                    months.div_euclid(3)
                }
            }
        }
    }
}

/// A reporting period, identified by its first day (days since 1970-01-01, UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    pub start: i32,
}

impl Period {
    /// The first day as `YYYY-MM-DD`.
    pub fn date_string(self) -> String {
        let (y, m, d) = civil_from_days(self.start);
        format!("{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.date_string())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD` into days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i32> {
    let mut it = s.splitn(3, '-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn periods() {
        let d = parse_date("2025-08-17").unwrap();
        assert_eq!(Granularity::Month.period_of(d).date_string(), "2025-08-01");
        assert_eq!(
            Granularity::Quarter.period_of(d).date_string(),
            "2025-07-01"
        );
        // 2025-08-17 is a Sunday; its ISO week starts Monday 2025-08-11.
        assert_eq!(Granularity::Week.period_of(d).date_string(), "2025-08-11");
        let m = Granularity::Month.period_of(d);
        assert_eq!(Granularity::Month.shift(m, -8).date_string(), "2024-12-01");
        assert_eq!(
            Granularity::Month.distance(Granularity::Month.shift(m, -8), m),
            8
        );
        assert_eq!(parse_date("2025-02-30"), None);
    }
}
