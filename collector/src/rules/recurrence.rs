//! Recurring maintenance windows: `daily 01:00-01:30`, `every Sunday 02:00-04:00`,
//! `every Sat,Sun 22:00-06:00 +01:00`, `every month on day 1 03:00-05:00 UTC`.
//!
//! A window may cross midnight (`22:00-06:00` ends the next morning) and lasts less than a
//! day. Times are in a fixed UTC offset (default UTC): there is no time-zone database here,
//! so a window in a zone with daylight saving shifts by an hour half the year unless its
//! offset is updated. A monthly window on day 29-31 is skipped in months without that day,
//! as cron does.
//!
//! Computed with plain day arithmetic on `time::Date` (days since the epoch in the window's
//! offset); no `time` features beyond the collector's existing ones are needed.

use std::fmt;

use time::{Date, Weekday};

const DAY_MS: i64 = 86_400_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
/// How far ahead to look for the next occurrence: a monthly window on day 31 recurs within
/// 62 days.
const LOOKAHEAD_DAYS: i64 = 62;

const WEEKDAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Monday, "monday", "Mon"),
    (Weekday::Tuesday, "tuesday", "Tue"),
    (Weekday::Wednesday, "wednesday", "Wed"),
    (Weekday::Thursday, "thursday", "Thu"),
    (Weekday::Friday, "friday", "Fri"),
    (Weekday::Saturday, "saturday", "Sat"),
    (Weekday::Sunday, "sunday", "Sun"),
];

/// On which days a window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Day,
    /// Bit `n` set: starts on the weekday `n` days from Monday.
    Weekdays(u8),
    /// Day of the month, 1 to 31.
    MonthDay(u8),
}

/// A parsed recurrence. `Display` writes a canonical form that parses back to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurrence {
    pub every: Every,
    /// Start, minutes after local midnight.
    pub start_minute: u16,
    /// Length in minutes, 1 to 1439.
    pub duration_minutes: u16,
    /// The offset of local time from UTC, in minutes (east positive).
    pub offset_minutes: i16,
}

/// Why a recurrence was refused; the message shows the forms accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{message} in {text:?}; expected e.g. \"daily 01:00-01:30\", \"every Sunday 02:00-04:00\", \"every Sat,Sun 22:00-06:00 +01:00\" or \"every month on day 1 03:00-05:00 UTC\""
)]
pub struct RecurrenceError {
    pub text: String,
    pub message: String,
}

impl Recurrence {
    pub fn parse(text: &str) -> Result<Recurrence, RecurrenceError> {
        let fail = |message: String| RecurrenceError {
            text: text.to_string(),
            message,
        };
        // Accept the en dash people paste from documents, and spaces around the dash.
        let normalised = text.replace('–', "-").replace(" - ", "-").to_lowercase();
        let tokens: Vec<&str> = normalised.split_whitespace().collect();
        let (every, rest) = match tokens.as_slice() {
            ["daily", rest @ ..] | ["every", "day", rest @ ..] => (Every::Day, rest),
            ["monthly", "on", "day", day, rest @ ..]
            | ["every", "month", "on", "day", day, rest @ ..] => {
                let day: u8 = day
                    .parse()
                    .ok()
                    .filter(|day| (1..=31).contains(day))
                    .ok_or_else(|| fail(format!("day of month {day:?} is not 1 to 31")))?;
                (Every::MonthDay(day), rest)
            }
            ["every", days, rest @ ..] => {
                let mut mask = 0u8;
                for day in days.split(',').filter(|day| !day.is_empty()) {
                    let bit = WEEKDAYS
                        .iter()
                        .position(|(_, long, short)| {
                            day == *long || day.eq_ignore_ascii_case(short)
                        })
                        .ok_or_else(|| {
                            fail(format!("{day:?} is not a weekday, \"day\" or \"month\""))
                        })?;
                    mask |= 1 << bit;
                }
                if mask == 0 {
                    return Err(fail("no weekday given".into()));
                }
                (Every::Weekdays(mask), rest)
            }
            _ => return Err(fail("it does not start with \"daily\" or \"every\"".into())),
        };
        let (range, zone) = match rest {
            [range] => (*range, None),
            [range, zone] => (*range, Some(*zone)),
            [] => return Err(fail("no time range (HH:MM-HH:MM)".into())),
            _ => {
                return Err(fail(format!(
                    "unexpected {:?} after the time range",
                    rest[2..].join(" ")
                )));
            }
        };
        let (start, end) = range
            .split_once('-')
            .ok_or_else(|| fail(format!("{range:?} is not a time range HH:MM-HH:MM")))?;
        let start_minute =
            parse_clock(start).ok_or_else(|| fail(format!("{start:?} is not a time HH:MM")))?;
        let end_minute =
            parse_clock(end).ok_or_else(|| fail(format!("{end:?} is not a time HH:MM")))?;
        if start_minute == end_minute {
            return Err(fail("the window starts and ends at the same time".into()));
        }
        let duration_minutes = (end_minute + 1440 - start_minute) % 1440;
        let offset_minutes = match zone {
            None => 0,
            Some(zone) => parse_offset(zone)
                .ok_or_else(|| fail(format!("{zone:?} is not UTC or an offset like +02:00")))?,
        };
        Ok(Recurrence {
            every,
            start_minute,
            duration_minutes,
            offset_minutes,
        })
    }

    /// Whether a window is open at `at_ms` (start inclusive, end exclusive).
    pub fn active(&self, at_ms: i64) -> bool {
        self.current(at_ms).is_some()
    }

    /// The window open at `at_ms`, as (start, end) in epoch milliseconds.
    pub fn current(&self, at_ms: i64) -> Option<(i64, i64)> {
        let today = self.local_day(at_ms);
        // A window open now started today or, crossing midnight, yesterday.
        [today - 1, today]
            .into_iter()
            .filter_map(|day| self.occurrence_on(day))
            .find(|&(start, end)| start <= at_ms && at_ms < end)
    }

    /// The window open at `at_ms`, or else the next one to open.
    pub fn current_or_next(&self, at_ms: i64) -> Option<(i64, i64)> {
        let today = self.local_day(at_ms);
        (today - 1..=today + LOOKAHEAD_DAYS)
            .filter_map(|day| self.occurrence_on(day))
            .find(|&(_, end)| end > at_ms)
    }

    /// When the window open at `at_ms` ends, or else when the next one does.
    pub fn next_end(&self, at_ms: i64) -> Option<i64> {
        self.current_or_next(at_ms).map(|(_, end)| end)
    }

    /// When the next window opens after `at_ms` (not the one open now).
    pub fn next_start(&self, at_ms: i64) -> Option<i64> {
        let today = self.local_day(at_ms);
        (today - 1..=today + LOOKAHEAD_DAYS)
            .filter_map(|day| self.occurrence_on(day))
            .map(|(start, _)| start)
            .find(|&start| start > at_ms)
    }

    fn offset_ms(&self) -> i64 {
        i64::from(self.offset_minutes) * 60_000
    }

    /// Days since the epoch, in local time, of `at_ms`.
    fn local_day(&self, at_ms: i64) -> i64 {
        at_ms.saturating_add(self.offset_ms()).div_euclid(DAY_MS)
    }

    /// The window that starts on local day `day` (days since the epoch), if one does.
    fn occurrence_on(&self, day: i64) -> Option<(i64, i64)> {
        let date = Date::from_julian_day(i32::try_from(day + UNIX_EPOCH_JULIAN_DAY).ok()?).ok()?;
        let starts_today = match self.every {
            Every::Day => true,
            Every::Weekdays(mask) => mask & (1 << date.weekday().number_days_from_monday()) != 0,
            Every::MonthDay(month_day) => date.day() == month_day,
        };
        if !starts_today {
            return None;
        }
        let start = day * DAY_MS + i64::from(self.start_minute) * 60_000 - self.offset_ms();
        Some((start, start + i64::from(self.duration_minutes) * 60_000))
    }
}

fn parse_clock(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60 && text.len() <= 5).then_some(hours * 60 + minutes)
}

/// `utc`, `z`, `+02:00`, `-05:30`, `+2`, `utc+2`, `utc+02:00`, in minutes east of UTC.
fn parse_offset(text: &str) -> Option<i16> {
    let text = text.strip_prefix("utc").unwrap_or(text);
    if text.is_empty() || text == "z" {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
    let (hours, minutes): (i16, i16) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours <= 14 && (0..60).contains(&minutes) && hours >= 0)
        .then_some(sign * (hours * 60 + minutes))
}

impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.every {
            Every::Day => write!(f, "daily")?,
            Every::MonthDay(day) => write!(f, "every month on day {day}")?,
            Every::Weekdays(mask) => {
                let days: Vec<&str> = WEEKDAYS
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| mask & (1 << bit) != 0)
                    .map(|(_, (_, long, short))| {
                        if mask.count_ones() == 1 {
                            *long
                        } else {
                            *short
                        }
                    })
                    .collect();
                let days = days.join(",");
                let mut chars = days.chars();
                let capitalised: String = chars
                    .next()
                    .map(|c| c.to_ascii_uppercase())
                    .into_iter()
                    .chain(chars)
                    .collect();
                write!(f, "every {capitalised}")?;
            }
        }
        let end = (self.start_minute + self.duration_minutes) % 1440;
        write!(
            f,
            " {:02}:{:02}-{:02}:{:02} ",
            self.start_minute / 60,
            self.start_minute % 60,
            end / 60,
            end % 60
        )?;
        if self.offset_minutes == 0 {
            write!(f, "UTC")
        } else {
            let sign = if self.offset_minutes < 0 { '-' } else { '+' };
            let abs = self.offset_minutes.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", abs / 60, abs % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch ms of a UTC date and time.
    fn utc(date: &str, hh_mm: &str) -> i64 {
        let (y, rest) = date.split_once('-').unwrap();
        let (m, d) = rest.split_once('-').unwrap();
        let date = Date::from_calendar_date(
            y.parse().unwrap(),
            time::Month::try_from(m.parse::<u8>().unwrap()).unwrap(),
            d.parse().unwrap(),
        )
        .unwrap();
        let minutes = parse_clock(hh_mm).unwrap();
        (i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY) * DAY_MS
            + i64::from(minutes) * 60_000
    }

    fn r(text: &str) -> Recurrence {
        Recurrence::parse(text).unwrap()
    }

    #[test]
    fn weekly_window_is_active_only_inside_it() {
        // 2024-06-02 is a Sunday.
        let sunday = r("every Sunday 02:00-04:00");
        assert!(!sunday.active(utc("2024-06-02", "01:59")));
        assert!(sunday.active(utc("2024-06-02", "02:00")));
        assert!(sunday.active(utc("2024-06-02", "03:59")));
        assert!(
            !sunday.active(utc("2024-06-02", "04:00")),
            "end is exclusive"
        );
        assert!(!sunday.active(utc("2024-06-03", "03:00")), "Monday");
        assert!(sunday.active(utc("2024-06-09", "03:00")), "next Sunday");
    }

    #[test]
    fn daily_window_and_its_next_end_and_start() {
        let nightly = r("daily 01:00-01:30");
        assert!(nightly.active(utc("2024-02-29", "01:15")));
        assert_eq!(
            nightly.next_end(utc("2024-02-29", "01:15")),
            Some(utc("2024-02-29", "01:30"))
        );
        assert_eq!(
            nightly.next_end(utc("2024-02-29", "12:00")),
            Some(utc("2024-03-01", "01:30"))
        );
        assert_eq!(
            nightly.next_start(utc("2024-02-29", "01:15")),
            Some(utc("2024-03-01", "01:00"))
        );
        assert_eq!(r("every day 01:00-01:30"), nightly);
    }

    #[test]
    fn a_window_may_cross_midnight() {
        // 2024-06-01 is a Saturday: open Saturday 22:00 to Sunday 06:00.
        let weekend = r("every Saturday 22:00-06:00");
        assert!(weekend.active(utc("2024-06-01", "23:00")));
        assert!(
            weekend.active(utc("2024-06-02", "05:59")),
            "Sunday morning, started Saturday"
        );
        assert!(
            !weekend.active(utc("2024-06-02", "22:30")),
            "Sunday evening is not a start day"
        );
        assert_eq!(weekend.duration_minutes, 480);
    }

    #[test]
    fn monthly_window_on_a_day_skips_months_without_it() {
        let first = r("every month on day 1 03:00-05:00 UTC");
        assert!(first.active(utc("2024-07-01", "04:00")));
        assert!(!first.active(utc("2024-07-02", "04:00")));
        let thirty_first = r("monthly on day 31 03:00-05:00");
        assert_eq!(
            thirty_first.next_end(utc("2024-01-31", "12:00")),
            Some(utc("2024-03-31", "05:00")),
            "February has no 31st"
        );
    }

    #[test]
    fn offsets_shift_the_window() {
        let berlin = r("every Sunday 02:00-04:00 +02:00");
        assert!(berlin.active(utc("2024-06-02", "00:30")), "02:30 at +02:00");
        assert!(!berlin.active(utc("2024-06-02", "02:30")));
        let new_york = r("daily 23:00-01:00 UTC-05:00");
        assert!(new_york.active(utc("2024-06-03", "04:30")), "23:30 local");
        assert_eq!(r("daily 23:00-01:00 -5"), new_york);
    }

    #[test]
    fn several_weekdays_and_the_en_dash() {
        let weekend = r("every Sat,Sun 02:00–04:00");
        assert!(weekend.active(utc("2024-06-01", "03:00")));
        assert!(weekend.active(utc("2024-06-02", "03:00")));
        assert!(!weekend.active(utc("2024-06-03", "03:00")));
        assert_eq!(
            r("every sunday 02:00 - 04:00"),
            r("every Sunday 02:00-04:00")
        );
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for text in [
            "daily 01:00-01:30 UTC",
            "every Sunday 02:00-04:00 UTC",
            "every Sat,Sun 22:00-06:00 +01:00",
            "every month on day 1 03:00-05:00 -05:30",
        ] {
            let parsed = r(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(r(&parsed.to_string()), parsed);
        }
    }

    #[test]
    fn errors_say_what_is_wrong_and_show_the_forms() {
        let error = |text: &str| Recurrence::parse(text).unwrap_err().to_string();
        assert!(error("every Sundy 02:00-04:00").contains("\"sundy\" is not a weekday"));
        assert!(error("weekly 02:00-04:00").contains("does not start with"));
        assert!(error("daily 25:00-04:00").contains("\"25:00\" is not a time"));
        assert!(error("daily 02:00").contains("not a time range"));
        assert!(error("daily").contains("no time range"));
        assert!(error("daily 02:00-02:00").contains("same time"));
        assert!(error("every month on day 32 01:00-02:00").contains("not 1 to 31"));
        assert!(error("daily 01:00-02:00 CEST").contains("\"cest\" is not UTC or an offset"));
        assert!(error("daily 01:00-02:00 UTC extra").contains("unexpected \"extra\""));
        assert!(
            error("weekly 02:00-04:00").contains("every Sunday 02:00-04:00"),
            "shows the accepted forms"
        );
    }

    #[test]
    fn times_before_1970_work_too() {
        let nightly = r("daily 01:00-01:30");
        assert!(nightly.active(-DAY_MS + 75 * 60_000));
    }
}
