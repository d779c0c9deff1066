//! Byte ranges of values inside JSON text. The conflist is edited textually, so that every byte
//! the installer does not own stays exactly as the primary CNI wrote it. Callers validate the
//! text with serde_json first; on anything unexpected these functions return `None`.

use std::ops::Range;

/// The range of the value of `key` in the top-level object. With duplicate keys the last one
/// wins, as in serde_json.
pub fn top_level_member(text: &str, key: &str) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut i = skip_whitespace(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_whitespace(bytes, i + 1);
    let mut found = None;
    while bytes.get(i) == Some(&b'"') {
        let key_end = skip_string(bytes, i)?;
        let name: String = serde_json::from_str(&text[i..key_end]).ok()?;
        i = skip_whitespace(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_whitespace(bytes, i + 1);
        let end = skip_value(bytes, start)?;
        if name == key {
            found = Some(start..end);
        }
        i = skip_whitespace(bytes, end);
        if bytes.get(i) == Some(&b',') {
            i = skip_whitespace(bytes, i + 1);
        }
    }
    found
}

/// The ranges of the elements of the array that starts at `start`.
pub fn array_elements(text: &str, start: usize) -> Option<Vec<Range<usize>>> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&b'[') {
        return None;
    }
    let mut elements = Vec::new();
    let mut i = skip_whitespace(bytes, start + 1);
    if bytes.get(i) == Some(&b']') {
        return Some(elements);
    }
    loop {
        let end = skip_value(bytes, i)?;
        elements.push(i..end);
        i = skip_whitespace(bytes, end);
        match bytes.get(i) {
            Some(b',') => i = skip_whitespace(bytes, i + 1),
            Some(b']') => return Some(elements),
            _ => return None,
        }
    }
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string that starts at `i`.
fn skip_string(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match bytes.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index just past the value that starts at `i`.
fn skip_value(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => skip_string(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = skip_string(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = bytes[i..]
                .iter()
                .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(bytes.len() - i);
            (len > 0).then_some(i + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        r#" {"a": 1, "b\"]}": "x]}", "plugins" : [ {"k": [1, {"n": "}"}]}, true ,"s" ], "a": null}"#;

    #[test]
    fn finds_top_level_members_past_tricky_strings() {
        let plugins = top_level_member(TEXT, "plugins").unwrap();
        assert_eq!(&TEXT[plugins.clone()], r#"[ {"k": [1, {"n": "}"}]}, true ,"s" ]"#);
        let elements: Vec<&str> = array_elements(TEXT, plugins.start)
            .unwrap()
            .into_iter()
            .map(|r| &TEXT[r])
            .collect();
        assert_eq!(elements, [r#"{"k": [1, {"n": "}"}]}"#, "true", r#""s""#]);
    }

    #[test]
    fn the_last_duplicate_key_wins_and_missing_keys_are_none() {
        assert_eq!(&TEXT[top_level_member(TEXT, "a").unwrap()], "null");
        assert_eq!(top_level_member(TEXT, "k"), None);
        assert_eq!(top_level_member("[1]", "a"), None);
    }

    #[test]
    fn an_empty_array_has_no_elements() {
        let text = r#"{"plugins":[ ]}"#;
        let span = top_level_member(text, "plugins").unwrap();
        assert_eq!(array_elements(text, span.start), Some(vec![]));
    }
}
