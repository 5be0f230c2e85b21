//! Bounding text that came from outside (a caller, a plugin) before it is
//! echoed, logged or recorded.

use std::borrow::Cow;

/// The marker appended where text was cut.
pub const CUT: &str = "…";

/// `text` cut to at most `max` bytes (on a character boundary), with
/// [`CUT`] appended when anything was removed.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}{CUT}", prefix(text, max)))
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_character_boundaries() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ééé", 3), "é…", "never splits a character");
        assert_eq!(prefix("ééé", 5), "éé");
    }
}
