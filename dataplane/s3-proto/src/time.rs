//! Calendar conversions for the three timestamp formats S3 speaks, without a date library:
//! IMF-fixdate HTTP dates (`Last-Modified`, `If-Modified-Since`; RFC 9110 §5.6.7, which also
//! obliges recipients to accept the obsolete RFC 850 and asctime forms), the SigV4 basic ISO 8601
//! form (`20130524T000000Z`), and the XML extended form with milliseconds
//! (`2009-10-12T17:50:30.000Z`).
//!
//! Model: time is an `i64` count of seconds (or milliseconds) since the Unix epoch, UTC, proleptic
//! Gregorian calendar. Leap seconds do not exist here (as in POSIX time).

const SECONDS_PER_DAY: i64 = 86_400;
const WEEKDAY_NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm: shift the
/// year to start in March so the leap day is the last day of the shifted year).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days_since_epoch: i64) -> (i64, u32, u32) {
    let shifted = days_since_epoch + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl CivilTime {
    pub fn from_unix_seconds(unix_seconds: i64) -> CivilTime {
        let days = unix_seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = unix_seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        CivilTime {
            year,
            month,
            day,
            hour: (second_of_day / 3600) as u32,
            minute: (second_of_day / 60 % 60) as u32,
            second: (second_of_day % 60) as u32,
        }
    }

    /// `None` when a field is out of range (month 13, February 30, hour 24, …).
    pub fn to_unix_seconds(self) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return None;
        }
        // A leap second `:60` is read as the next second, as POSIX does.
        Some(
            days_from_civil(self.year, self.month, self.day) * SECONDS_PER_DAY
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second),
        )
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format_http_date(unix_seconds: i64) -> String {
    let civil = CivilTime::from_unix_seconds(unix_seconds);
    let weekday = WEEKDAY_NAMES[unix_seconds.div_euclid(SECONDS_PER_DAY).rem_euclid(7) as usize];
    format!(
        "{weekday}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        civil.day,
        MONTH_NAMES[civil.month as usize - 1],
        civil.year,
        civil.hour,
        civil.minute,
        civil.second
    )
}

fn parse_fixed_digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_month_name(text: &str) -> Option<u32> {
    MONTH_NAMES
        .iter()
        .position(|name| *name == text)
        .map(|index| index as u32 + 1)
}

fn parse_clock(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(':');
    let hour = parts
        .next()
        .filter(|part| part.len() == 2)
        .and_then(parse_fixed_digits)?;
    let minute = parts
        .next()
        .filter(|part| part.len() == 2)
        .and_then(parse_fixed_digits)?;
    let second = parts
        .next()
        .filter(|part| part.len() == 2)
        .and_then(parse_fixed_digits)?;
    if parts.next().is_some() {
        return None;
    }
    Some((hour, minute, second))
}

/// Parses the three HTTP-date forms. The weekday is not checked against the date: RFC 9110 lets
/// a recipient ignore it, and rejecting a date for it would turn a conditional GET into an
/// unconditional one without telling anybody.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let (_weekday, rest) = text.split_once(' ')?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let civil = if let [date, clock, "GMT"] = fields.as_slice() {
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`; two-digit years are within 50 years of now,
        // which for any date S3 cares about means 19xx for 70..99 and 20xx otherwise.
        let mut parts = date.split('-');
        let day = parse_fixed_digits(parts.next()?)?;
        let month = parse_month_name(parts.next()?)?;
        let year_text = parts.next()?;
        let year_two = i64::from(parse_fixed_digits(year_text)?);
        let year = if year_text.len() == 2 {
            if year_two >= 70 {
                1900 + year_two
            } else {
                2000 + year_two
            }
        } else {
            year_two
        };
        let (hour, minute, second) = parse_clock(clock)?;
        CivilTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    } else if let [day, month, year, clock, "GMT"] = fields.as_slice() {
        let (hour, minute, second) = parse_clock(clock)?;
        CivilTime {
            year: i64::from(parse_fixed_digits(year).filter(|_| year.len() == 4)?),
            month: parse_month_name(month)?,
            day: parse_fixed_digits(day)?,
            hour,
            minute,
            second,
        }
    } else if let [month, day, clock, year] = fields.as_slice() {
        // asctime: `Sun Nov  6 08:49:37 1994`.
        let (hour, minute, second) = parse_clock(clock)?;
        CivilTime {
            year: i64::from(parse_fixed_digits(year).filter(|_| year.len() == 4)?),
            month: parse_month_name(month)?,
            day: parse_fixed_digits(day)?,
            hour,
            minute,
            second,
        }
    } else {
        return None;
    };
    civil.to_unix_seconds()
}

/// `20130524T000000Z`, the `x-amz-date` form.
pub fn format_amz_date(unix_seconds: i64) -> String {
    let civil = CivilTime::from_unix_seconds(unix_seconds);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        civil.year, civil.month, civil.day, civil.hour, civil.minute, civil.second
    )
}

/// Parses `YYYYMMDDTHHMMSSZ` strictly (exactly 16 bytes).
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| parse_fixed_digits(text.get(range)?);
    CivilTime {
        year: i64::from(number(0..4)?),
        month: number(4..6)?,
        day: number(6..8)?,
        hour: number(9..11)?,
        minute: number(11..13)?,
        second: number(13..15)?,
    }
    .to_unix_seconds()
}

/// `2009-10-12T17:50:30.000Z`, the form of every timestamp in S3 XML bodies.
pub fn format_iso8601_millis(unix_millis: i64) -> String {
    let civil = CivilTime::from_unix_seconds(unix_millis.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        civil.year,
        civil.month,
        civil.day,
        civil.hour,
        civil.minute,
        civil.second,
        unix_millis.rem_euclid(1000)
    )
}

/// Parses an ISO 8601 UTC timestamp as S3 headers and documents carry it:
/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction of any length (kept to milliseconds), then `Z` or
/// a `+HH:MM` / `-HH:MM` offset. Unix milliseconds.
pub fn parse_iso8601_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| parse_fixed_digits(text.get(range)?);
    let seconds = CivilTime {
        year: i64::from(number(0..4)?),
        month: number(5..7)?,
        day: number(8..10)?,
        hour: number(11..13)?,
        minute: number(14..16)?,
        second: number(17..19)?,
    }
    .to_unix_seconds()?;
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = i64::from(parse_fixed_digits(&padded)?);
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = rest.get(1..)?;
            if offset.len() != 5 || offset.as_bytes()[2] != b':' {
                return None;
            }
            let hours = i64::from(parse_fixed_digits(&offset[0..2])?);
            let minutes = i64::from(parse_fixed_digits(&offset[3..5])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    (seconds - offset_seconds)
        .checked_mul(1000)?
        .checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iso8601_forms() {
        assert_eq!(
            parse_iso8601_millis("2030-01-01T00:00:00Z"),
            Some(1_893_456_000_000)
        );
        assert_eq!(
            parse_iso8601_millis("2030-01-01T00:00:00.5Z"),
            Some(1_893_456_000_500)
        );
        assert_eq!(
            parse_iso8601_millis("2030-01-01T00:00:00.123456Z"),
            Some(1_893_456_000_123)
        );
        assert_eq!(
            parse_iso8601_millis("2030-01-01T01:30:00+01:30"),
            Some(1_893_456_000_000)
        );
        for bad in [
            "2030-01-01",
            "2030-01-01T00:00:00",
            "2030-13-01T00:00:00Z",
            "2030-01-01T00:00:00.Z",
            "x030-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_iso8601_millis(bad), None, "{bad}");
        }
        let millis = 1_764_000_000_042;
        assert_eq!(
            parse_iso8601_millis(&format_iso8601_millis(millis)),
            Some(millis)
        );
    }

    #[test]
    fn http_date_round_trips_the_rfc_example() {
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
    }

    #[test]
    fn http_date_rejects_garbage() {
        for text in [
            "",
            "yesterday",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(text), None, "{text}");
        }
    }

    #[test]
    fn amz_date_and_xml_forms() {
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(1_369_353_600));
        assert_eq!(format_amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(parse_amz_date("20130524T000000"), None);
        assert_eq!(parse_amz_date("2013052XT000000Z"), None);
        assert_eq!(
            format_iso8601_millis(1_255_369_830_123),
            "2009-10-12T17:50:30.123Z"
        );
    }

    proptest! {
        #[test]
        fn civil_round_trip(unix_seconds in -62_000_000_000i64..253_402_300_799) {
            let civil = CivilTime::from_unix_seconds(unix_seconds);
            prop_assert_eq!(civil.to_unix_seconds(), Some(unix_seconds));
        }

        #[test]
        fn http_date_round_trip(unix_seconds in 0i64..253_402_300_799) {
            prop_assert_eq!(parse_http_date(&format_http_date(unix_seconds)), Some(unix_seconds));
        }
    }
}
