//! ZooKeeper's path rules (`PathUtils.validatePath`), character for character.

/// Why a path is invalid; writes with such a path get `BadArguments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("path length must be > 0")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with / character")]
    Relative,
    /// The path ends with `/` (other than the root).
    #[error("path must not end with / character")]
    TrailingSlash,
    /// A NUL character at the given UTF-16 index.
    #[error("null character not allowed @{0}")]
    Nul(usize),
    /// Two slashes in a row.
    #[error("empty node name specified @{0}")]
    EmptyName(usize),
    /// A `.` or `..` component.
    #[error("relative paths not allowed @{0}")]
    DotComponent(usize),
    /// A control, surrogate, private-use or specials character.
    #[error("invalid character @{0}")]
    InvalidCharacter(usize),
}

/// Validates `path` exactly as ZooKeeper does. Indexes count UTF-16 units, as Java's
/// `char`s; any character outside the Basic Multilingual Plane is rejected, because its
/// surrogates fall in the forbidden `\u{d800}..=\u{f8ff}` range.
///
/// # Errors
/// The first rule the path breaks.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    // An ASCII path's bytes are its UTF-16 units: checked in place, with no copy.
    if path.is_ascii() {
        validate_units(path.as_bytes())
    } else {
        validate_units(&path.encode_utf16().collect::<Vec<u16>>())
    }
}

/// [`validate_path`]'s rules over the path's UTF-16 units (or its bytes, all ASCII).
fn validate_units<U: Copy + Into<u16>>(units: &[U]) -> Result<(), PathError> {
    let at = |index: usize| units.get(index).map(|&unit| unit.into());
    let Some(first) = at(0) else {
        return Err(PathError::Empty);
    };
    if first != u16::from(b'/') {
        return Err(PathError::Relative);
    }
    if units.len() == 1 {
        return Ok(());
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    if at(units.len() - 1) == Some(slash) {
        return Err(PathError::TrailingSlash);
    }
    let mut last = slash;
    for (index, &unit) in units.iter().enumerate().skip(1) {
        let c = unit.into();
        let next_ends_name = || at(index + 1).is_none_or(|next| next == slash);
        if c == 0 {
            return Err(PathError::Nul(index));
        } else if c == slash && last == slash {
            return Err(PathError::EmptyName(index));
        } else if c == dot && last == dot {
            if index >= 2 && at(index - 2) == Some(slash) && next_ends_name() {
                return Err(PathError::DotComponent(index));
            }
        } else if c == dot {
            if at(index - 1) == Some(slash) && next_ends_name() {
                return Err(PathError::DotComponent(index));
            }
        } else if (0x01..=0x1f).contains(&c)
            || (0x7f..=0x9f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            return Err(PathError::InvalidCharacter(index));
        }
        last = c;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for path in ["/", "/a", "/a/b-c_d.e", "/a/..b", "/a/b.", "/zookeeper/quota", "/é/ü"] {
            assert_eq!(validate_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn rejects_what_zookeeper_rejects() {
        assert_eq!(validate_path(""), Err(PathError::Empty));
        assert_eq!(validate_path("a"), Err(PathError::Relative));
        assert_eq!(validate_path("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(validate_path("/a//b"), Err(PathError::EmptyName(3)));
        assert_eq!(validate_path("/a/./b"), Err(PathError::DotComponent(3)));
        assert_eq!(validate_path("/a/.."), Err(PathError::DotComponent(4)));
        assert_eq!(validate_path("/."), Err(PathError::DotComponent(1)));
        assert_eq!(validate_path("/a\0b"), Err(PathError::Nul(2)));
        assert_eq!(validate_path("/a\u{1}"), Err(PathError::InvalidCharacter(2)));
        assert_eq!(validate_path("/a\u{85}"), Err(PathError::InvalidCharacter(2)));
        assert_eq!(validate_path("/😀"), Err(PathError::InvalidCharacter(1)));
        assert_eq!(validate_path("/\u{e000}"), Err(PathError::InvalidCharacter(1)));
    }

    #[test]
    fn indexes_count_utf16_units_not_bytes() {
        // 'é' is two bytes but one unit: ZooKeeper reports the second slash at 3.
        assert_eq!(validate_path("/é//b"), Err(PathError::EmptyName(3)));
        assert_eq!(validate_path("/e//b"), Err(PathError::EmptyName(3)));
        assert_eq!(validate_path("/é/\u{1}"), Err(PathError::InvalidCharacter(3)));
    }
}
