//! How a setting's value is written: the one parser and printer per kind of
//! value, shared by the config file, environment variables and flags (a
//! value reads the same wherever it is written).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Reads and writes one kind of value.
pub trait Codec<T> {
    /// Suffix of the setting's key (and flag, env name) naming its unit.
    const UNIT: &'static str = "";
    /// Whether values are comma-separated lists (repeatable flags).
    const LIST: bool = false;
    /// Whether values are true or false (flags without a value).
    const BOOLEAN: bool = false;
    /// Parse a value as written.
    fn parse(raw: &str) -> Result<T, String>;
    /// Write a value as it would be parsed back.
    fn show(value: &T) -> String;
}

/// A whole number.
pub struct Num;
/// A duration in milliseconds.
pub struct Millis;
/// A duration in seconds.
pub struct Secs;
/// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub struct Flag;
/// Text; for an optional value, empty means none.
pub struct Text;
/// A path; for an optional one, empty means none.
pub struct Path;
/// `ADDR:PORT`; for an optional one, `off` (or empty) means none.
pub struct Addr;
/// A comma-separated list.
pub struct List;

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Codec<$t> for Num {
            fn parse(raw: &str) -> Result<$t, String> {
                raw.trim().parse().map_err(|_| format!("`{raw}` is not a whole number"))
            }
            fn show(value: &$t) -> String {
                value.to_string()
            }
        }
    )*};
}
numbers!(u32, u64, usize);

impl Codec<Duration> for Millis {
    const UNIT: &'static str = "_ms";
    fn parse(raw: &str) -> Result<Duration, String> {
        <Num as Codec<u64>>::parse(raw).map(Duration::from_millis)
    }
    fn show(value: &Duration) -> String {
        value.as_millis().to_string()
    }
}

impl Codec<Duration> for Secs {
    const UNIT: &'static str = "_s";
    fn parse(raw: &str) -> Result<Duration, String> {
        <Num as Codec<u64>>::parse(raw).map(Duration::from_secs)
    }
    fn show(value: &Duration) -> String {
        value.as_secs().to_string()
    }
}

impl Codec<bool> for Flag {
    const BOOLEAN: bool = true;
    fn parse(raw: &str) -> Result<bool, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(format!("`{raw}` is not true or false")),
        }
    }
    fn show(value: &bool) -> String {
        value.to_string()
    }
}

impl Codec<String> for Text {
    fn parse(raw: &str) -> Result<String, String> {
        Ok(raw.to_owned())
    }
    fn show(value: &String) -> String {
        value.clone()
    }
}

impl Codec<Option<String>> for Text {
    fn parse(raw: &str) -> Result<Option<String>, String> {
        Ok(Some(raw.trim()).filter(|s| !s.is_empty()).map(str::to_owned))
    }
    fn show(value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }
}

impl Codec<Option<PathBuf>> for Path {
    fn parse(raw: &str) -> Result<Option<PathBuf>, String> {
        Ok(Some(raw.trim()).filter(|s| !s.is_empty()).map(PathBuf::from))
    }
    fn show(value: &Option<PathBuf>) -> String {
        value.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    }
}

impl Codec<SocketAddr> for Addr {
    fn parse(raw: &str) -> Result<SocketAddr, String> {
        raw.trim().parse().map_err(|_| format!("`{raw}` is not ADDR:PORT"))
    }
    fn show(value: &SocketAddr) -> String {
        value.to_string()
    }
}

impl Codec<Option<SocketAddr>> for Addr {
    fn parse(raw: &str) -> Result<Option<SocketAddr>, String> {
        match raw.trim() {
            "" | "off" => Ok(None),
            addr => addr.parse().map(Some).map_err(|_| format!("`{raw}` is not ADDR:PORT or off")),
        }
    }
    fn show(value: &Option<SocketAddr>) -> String {
        value.map_or_else(|| "off".to_owned(), |a| a.to_string())
    }
}

impl Codec<Vec<String>> for List {
    const LIST: bool = true;
    fn parse(raw: &str) -> Result<Vec<String>, String> {
        Ok(split(raw).map(str::to_owned).collect())
    }
    fn show(value: &Vec<String>) -> String {
        value.join(",")
    }
}

impl Codec<Vec<ipnet::IpNet>> for List {
    const LIST: bool = true;
    fn parse(raw: &str) -> Result<Vec<ipnet::IpNet>, String> {
        split(raw).map(|net| net.parse().map_err(|_| format!("`{net}` is not a CIDR range"))).collect()
    }
    fn show(value: &Vec<ipnet::IpNet>) -> String {
        value.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }
}

fn split(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_they_are_shown() {
        let d = <Millis as Codec<Duration>>::parse("250").unwrap();
        assert_eq!(<Millis as Codec<Duration>>::show(&d), "250");
        assert_eq!(<Addr as Codec<Option<SocketAddr>>>::parse("off").unwrap(), None);
        assert!(<Addr as Codec<Option<SocketAddr>>>::parse("nowhere").is_err());
        let nets = <List as Codec<Vec<ipnet::IpNet>>>::parse("127.0.0.0/8, ::1/128").unwrap();
        assert_eq!(<List as Codec<Vec<ipnet::IpNet>>>::show(&nets), "127.0.0.0/8,::1/128");
        assert!(<Flag as Codec<bool>>::parse("maybe").is_err());
        assert!(<Num as Codec<u32>>::parse("-1").is_err());
        assert_eq!(<Text as Codec<Option<String>>>::parse(" ").unwrap(), None);
    }
}
