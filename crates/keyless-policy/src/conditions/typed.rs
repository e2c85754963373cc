//! The value types of the numeric, date, Bool and IP address operators, parsed
//! the same way from policy values and from request values.

use std::cmp::Ordering;
use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A decimal number compared exactly, without the rounding of floating point:
/// `0.1`, `100` and `-3.25` compare as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    /// Integer digits without leading zeros; empty for zero.
    integer: String,
    /// Fraction digits without trailing zeros; empty for none.
    fraction: String,
}

impl Decimal {
    /// Parses `-?digits(.digits)?`. Exponents, a leading `+`, and a bare `.` are
    /// rejected.
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if integer.is_empty() || !digits(integer) || !digits(fraction) || (unsigned.contains('.') && fraction.is_empty()) {
            return None;
        }
        let integer = integer.trim_start_matches('0').to_owned();
        let fraction = fraction.trim_end_matches('0').to_owned();
        // Negative zero is zero.
        let negative = negative && !(integer.is_empty() && fraction.is_empty());
        Some(Decimal { negative, integer, fraction })
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        // Without leading zeros a longer integer part is larger; without
        // trailing zeros fraction digits compare as text.
        self.integer
            .len()
            .cmp(&other.integer.len())
            .then_with(|| self.integer.cmp(&other.integer))
            .then_with(|| self.fraction.cmp(&other.fraction))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.negative, other.negative) {
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Parses a date as RFC 3339 (`2026-01-31T12:00:00Z`, any offset, optional
/// fraction of a second) or as whole seconds since the Unix epoch (`1769860800`).
pub(crate) fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: i64 = text.parse().ok()?;
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Parses `true` or `false`, in any case.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An IPv4 or IPv6 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNetwork {
    /// The network address, with the host bits cleared.
    network: IpAddr,
    prefix_len: u8,
}

impl IpNetwork {
    /// Parses `address/prefix-length` or a bare address, which stands for that
    /// one address (`/32` for IPv4, `/128` for IPv6). Host bits set in the
    /// address are cleared, so `192.0.2.7/24` is the network `192.0.2.0/24`.
    pub(crate) fn parse(text: &str) -> Option<IpNetwork> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().ok()?;
        let max_len = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max_len,
            Some(digits) if !digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse::<u8>().ok().filter(|len| *len <= max_len)?
            }
            Some(_) => return None,
        };
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & v4_mask(prefix_len)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & v6_mask(prefix_len)).into()),
        };
        Some(IpNetwork { network, prefix_len })
    }

    /// Returns whether the network contains `address`. An IPv4-mapped IPv6
    /// address (`::ffff:192.0.2.1`) is compared as the IPv4 address it maps.
    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => u32::from(address) & v4_mask(self.prefix_len) == u32::from(network),
            (IpAddr::V6(network), IpAddr::V6(address)) => u128::from(address) & v6_mask(self.prefix_len) == u128::from(network),
            _ => false,
        }
    }
}

fn v4_mask(prefix_len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0)
}

fn v6_mask(prefix_len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix_len)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> Decimal {
        Decimal::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn decimals_compare_exactly() {
        let ordered = ["-100", "-2.5", "-2", "-0.01", "0", "0.1", "0.25", "1", "1.5", "9", "10", "100.001", "12345678901234567890123"];
        for pair in ordered.windows(2) {
            assert!(decimal(pair[0]) < decimal(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn decimal_spellings_of_one_number_are_equal() {
        assert_eq!(decimal("007"), decimal("7"));
        assert_eq!(decimal("7.50"), decimal("7.5"));
        assert_eq!(decimal("-0"), decimal("0"));
        assert_eq!(decimal("0.0"), decimal("0"));
    }

    #[test]
    fn malformed_decimals_are_rejected() {
        for text in ["", "-", "+1", "1e3", "1.", ".5", "1.2.3", "0x10", " 1", "1 ", "NaN", "inf"] {
            assert_eq!(Decimal::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn dates_accept_rfc3339_and_epoch_seconds() {
        let rfc = parse_date("2020-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_date("1577836800"), Some(rfc));
        assert_eq!(parse_date("2020-01-01T01:00:00+01:00"), Some(rfc));
        assert_eq!(parse_date("2020-01-01T00:00:00.5Z").map(|d| d > rfc), Some(true));
        assert!(parse_date("-1").is_some());
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for text in ["", "2020-01-01", "2020-01-01T00:00:00", "yesterday", "1.5", "99999999999999999999"] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn bools_ignore_case() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool("1"), None);
    }

    #[test]
    fn cidr_contains_its_addresses() {
        let network = IpNetwork::parse("192.0.2.0/24").unwrap();
        assert!(network.contains("192.0.2.0".parse().unwrap()));
        assert!(network.contains("192.0.2.255".parse().unwrap()));
        assert!(!network.contains("192.0.3.0".parse().unwrap()));
        assert!(!network.contains("2001:db8::1".parse().unwrap()));
        assert!(network.contains("::ffff:192.0.2.9".parse().unwrap()));
    }

    #[test]
    fn bare_address_is_one_host() {
        let v4 = IpNetwork::parse("203.0.113.5").unwrap();
        assert!(v4.contains("203.0.113.5".parse().unwrap()));
        assert!(!v4.contains("203.0.113.6".parse().unwrap()));
        let v6 = IpNetwork::parse("2001:db8::1").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8::2".parse().unwrap()));
    }

    #[test]
    fn ipv6_cidr_contains_its_addresses() {
        let network = IpNetwork::parse("2001:db8::/32").unwrap();
        assert!(network.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!network.contains("2001:db9::1".parse().unwrap()));
        assert!(!network.contains("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn zero_prefix_contains_whole_family() {
        assert!(IpNetwork::parse("0.0.0.0/0").unwrap().contains("198.51.100.1".parse().unwrap()));
        assert!(IpNetwork::parse("::/0").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(!IpNetwork::parse("::/0").unwrap().contains("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(IpNetwork::parse("192.0.2.7/24"), IpNetwork::parse("192.0.2.0/24"));
    }

    #[test]
    fn malformed_cidrs_are_rejected() {
        for text in ["", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "10.0.0.0/+8", "10.0.0/8", "10.0.0.0/8/8", "example.com", "10.0.0.0/0008"] {
            assert_eq!(IpNetwork::parse(text), None, "{text:?}");
        }
    }
}
