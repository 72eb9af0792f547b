//! Reading and validating environment variables.

use super::BootstrapError;
use std::str::FromStr;
use std::time::Duration;
use zerorank_core::affinity::Bind;

/// Default bound on every bootstrap wait, seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

fn shorten(v: &str) -> String {
    v.chars().take(80).collect()
}

/// A required variable.
pub fn required(var: &'static str, hint: &'static str) -> Result<String, BootstrapError> {
    match std::env::var(var) {
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => Err(BootstrapError::MissingEnv { var, hint }),
        Err(std::env::VarError::NotUnicode(v)) => Err(BootstrapError::BadEnv {
            var,
            value: shorten(&v.to_string_lossy()),
            expected: "valid UTF-8".into(),
        }),
    }
}

/// An optional variable (unset or empty = `None`).
pub fn optional(var: &'static str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Parse a value, naming the variable on failure.
pub fn parse<T: FromStr>(var: &'static str, v: &str, expected: &str) -> Result<T, BootstrapError> {
    v.trim().parse::<T>().map_err(|_| BootstrapError::BadEnv {
        var,
        value: shorten(v),
        expected: expected.into(),
    })
}

/// A required number.
pub fn required_num<T: FromStr>(
    var: &'static str,
    hint: &'static str,
) -> Result<T, BootstrapError> {
    let v = required(var, hint)?;
    parse(var, &v, "a non-negative integer")
}

/// `ZR_BIND` ("core" | "none"), default core.
pub fn bind() -> Result<Bind, BootstrapError> {
    match optional("ZR_BIND") {
        None => Ok(Bind::Core),
        Some(v) => v.parse::<Bind>().map_err(|e| BootstrapError::BadEnv {
            var: "ZR_BIND",
            value: shorten(&v),
            expected: e,
        }),
    }
}

/// `ZR_BOOTSTRAP_TIMEOUT` seconds, default 60.
pub fn timeout() -> Result<Duration, BootstrapError> {
    match optional("ZR_BOOTSTRAP_TIMEOUT") {
        None => Ok(Duration::from_secs(DEFAULT_TIMEOUT_SECS)),
        Some(v) => {
            let s: u64 = parse("ZR_BOOTSTRAP_TIMEOUT", &v, "a positive number of seconds")?;
            if s == 0 {
                return Err(BootstrapError::BadEnv {
                    var: "ZR_BOOTSTRAP_TIMEOUT",
                    value: v,
                    expected: "a positive number of seconds".into(),
                });
            }
            Ok(Duration::from_secs(s))
        }
    }
}

/// 64 hex digits into 32 bytes.
pub fn parse_secret_value(v: &str) -> Option<[u8; 32]> {
    let v = v.trim();
    if v.len() != 64 {
        return None;
    }
    let bytes = hex::decode(v).ok()?;
    bytes.try_into().ok()
}

/// A required secret variable.
pub fn secret(var: &'static str, hint: &'static str) -> Result<[u8; 32], BootstrapError> {
    let v = required(var, hint)?;
    parse_secret_value(&v).ok_or_else(|| BootstrapError::BadEnv {
        var,
        value: "(hidden)".into(),
        expected: "64 hex digits (32 bytes), e.g. from 'openssl rand -hex 32'".into(),
    })
}

/// A job id of 1..=16 hex digits.
pub fn parse_job_id(var: &'static str, v: &str) -> Result<u64, BootstrapError> {
    let t = v.trim();
    if t.is_empty() || t.len() > 16 {
        return Err(BootstrapError::BadEnv {
            var,
            value: shorten(v),
            expected: "1 to 16 hex digits".into(),
        });
    }
    u64::from_str_radix(t, 16).map_err(|_| BootstrapError::BadEnv {
        var,
        value: shorten(v),
        expected: "1 to 16 hex digits".into(),
    })
}

/// Check `rank < size` and `size > 0`.
pub fn check_rank(
    rank_var: &'static str,
    rank: u32,
    size_var: &'static str,
    size: u32,
) -> Result<(), BootstrapError> {
    if size == 0 {
        return Err(BootstrapError::BadEnv {
            var: size_var,
            value: "0".into(),
            expected: "at least 1".into(),
        });
    }
    if rank >= size {
        return Err(BootstrapError::BadEnv {
            var: rank_var,
            value: rank.to_string(),
            expected: format!("less than {size_var}={size}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_ids() {
        assert!(parse_secret_value(&"ab".repeat(32)).is_some());
        assert!(parse_secret_value(&"ab".repeat(31)).is_none());
        assert!(parse_secret_value(&"zz".repeat(32)).is_none());
        assert_eq!(parse_job_id("X", "00000000000000ff").ok(), Some(255));
        assert!(parse_job_id("X", "").is_err());
        assert!(parse_job_id("X", "g").is_err());
        assert!(parse_job_id("X", "11111111111111111").is_err());
        assert!(check_rank("R", 3, "S", 3).is_err());
        assert!(check_rank("R", 0, "S", 0).is_err());
        assert!(check_rank("R", 2, "S", 3).is_ok());
    }
}
