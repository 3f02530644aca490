//! Java syntax inside Flume configuration values, turned into what weir's libraries read: the
//! replacement strings of `Matcher.replaceAll` (search_replace's `replaceString`) into the regex
//! crate's, and `SimpleDateFormat`/Joda date patterns (regex_extractor's millis serializer) into
//! chrono's. Hand-written because no crate translates between these syntaxes; both run once,
//! when the configuration is read, so a value Java would only fail on at run time is refused at
//! start with its key and line.

/// Translates a Java `Matcher.replaceAll` replacement string (Flume's `replaceString`) into the
/// regex crate's syntax, for `regex`: Java's `$N` (the longest run of digits naming an existing
/// group, as Java reads it) and `${name}` become `${N}` and `${name}`, so that a letter or digit
/// after them stays text; `\x` is a literal `x`, and a literal `$` becomes `$$`. What Java would
/// throw on at the first match (a group the pattern does not have, a `$` without a group, a
/// trailing `\`) is an error here, when the configuration is read.
pub fn java_replacement(java: &str, regex: &regex::Regex) -> Result<String, String> {
    let groups = regex.captures_len() - 1;
    let mut out = String::with_capacity(java.len() + 8);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(escaped) => out.push(escaped),
                None => {
                    return Err("ends with a lone `\\` (a literal `\\` is `\\\\`, written \
                                `\\\\\\\\` in a properties file)"
                        .into());
                }
            },
            '$' => match chars.next() {
                Some('{') => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) if ch.is_ascii_alphanumeric() => name.push(ch),
                            _ => {
                                return Err(format!(
                                    "`${{{name}` is not a group reference: Java's `${{name}}` \
                                     takes letters and digits and a closing `}}`"
                                ));
                            }
                        }
                    }
                    if name.is_empty() || name.starts_with(|ch: char| ch.is_ascii_digit()) {
                        return Err(format!(
                            "`${{{name}}}` is not a group name (it must start with a letter)"
                        ));
                    }
                    if !regex.capture_names().flatten().any(|n| n == name) {
                        return Err(format!(
                            "`${{{name}}}` refers to a group the pattern does not name"
                        ));
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some(d @ '0'..='9') => {
                    let mut n = d as usize - '0' as usize;
                    if n > groups {
                        return Err(format!(
                            "`${n}` refers to group {n}, but the pattern has {groups} group(s) \
                             (a literal `$` is `\\$`, written `\\\\$` in a properties file)"
                        ));
                    }
                    // As Java: further digits belong to the number while it names a group.
                    while let Some(next) = chars.peek().and_then(|ch| ch.to_digit(10)) {
                        let longer = n * 10 + next as usize;
                        if longer > groups {
                            break;
                        }
                        n = longer;
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                other => {
                    let after = other
                        .map(|ch| format!("`${ch}`"))
                        .unwrap_or("a final `$`".into());
                    return Err(format!(
                        "{after} is not a group reference: Java needs a group number or {{name}} \
                         after `$` (a literal `$` is `\\$`, written `\\\\$` in a properties file)"
                    ));
                }
            },
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Translates a Java date pattern (`SimpleDateFormat`/Joda letters, as Flume's millis serializer
/// takes) into chrono's `strftime` syntax: `yyyy` `yy` `M`/`MM` `MMM` `MMMM` `d`/`dd` `H`/`HH`
/// `h`/`hh` `a` `m`/`mm` `s`/`ss` `SSS` (also `SSSSSS`, `SSSSSSSSS`) `EEE` `EEEE` `Z`, and
/// `'quoted text'` (`''` is a quote). Other letters are refused.
pub fn java_date_format(java: &str) -> Result<String, String> {
    fn literal(out: &mut String, ch: char) {
        match ch {
            '%' => out.push_str("%%"),
            _ => out.push(ch),
        }
    }
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            if chars.get(i) == Some(&'\'') {
                out.push('\'');
                i += 1;
                continue;
            }
            loop {
                match chars.get(i) {
                    None => return Err(format!("'{java}': a quote is not closed")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        out.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        literal(&mut out, ch);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            literal(&mut out, c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let spec = match (c, run) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1 | 2) => "%d",
            ('H', 1 | 2) => "%H",
            ('h', 1 | 2) => "%I",
            ('a', 1) => "%p",
            ('m', 1 | 2) => "%M",
            ('s', 1 | 2) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', _) => "%z",
            _ => {
                return Err(format!(
                    "'{java}': `{}` is not supported; supported: yyyy, yy, M, MM, MMM, MMMM, d, dd, \
                     H, HH, h, hh, a, m, mm, s, ss, SSS, EEE, EEEE, Z and 'quoted text'",
                    chars[i..i + run].iter().collect::<String>()
                ));
            }
        };
        out.push_str(spec);
        i += run;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_replacement_strings_translate_to_the_regex_crates_syntax() {
        let two = regex::Regex::new(r"(\d+)-(\d+)").unwrap();
        let ok = |java: &str| java_replacement(java, &two).unwrap();
        assert_eq!(ok(""), "");
        assert_eq!(ok("plain"), "plain");
        // Java's `$1abc` is group 1 then "abc"; the regex crate would read a group "1abc".
        assert_eq!(ok("$1abc"), "${1}abc");
        assert_eq!(ok("$2$1"), "${2}${1}");
        assert_eq!(ok("$0!"), "${0}!");
        // Java takes a second digit only while the number still names a group.
        assert_eq!(ok("$12"), "${1}2");
        assert_eq!(ok(r"\$1 costs \$"), "$$1 costs $$");
        assert_eq!(ok(r"a\\b\x"), r"a\bx");
        assert_eq!(
            two.replace_all("10-20", ok("$2$1abc").as_str()),
            "2010abc",
            "the translation means what Java means"
        );
        assert_eq!(two.replace_all("10-20", ok(r"\$$1").as_str()), "$10");

        let twelve = regex::Regex::new(&"(.)".repeat(12)).unwrap();
        assert_eq!(java_replacement("$12", &twelve).unwrap(), "${12}");
        assert_eq!(java_replacement("$123", &twelve).unwrap(), "${12}3");

        let named = regex::Regex::new(r"(?<word>\w+)").unwrap();
        assert_eq!(java_replacement("${word}s", &named).unwrap(), "${word}s");
        assert_eq!(named.replace_all("cat", "${word}s"), "cats");

        for (java, says) in [
            ("$3", "refers to group 3, but the pattern has 2 group(s)"),
            ("$x", "`$x` is not a group reference"),
            ("cost $", "a final `$` is not a group reference"),
            ("a\\", "ends with a lone `\\`"),
            (
                "${word}",
                "`${word}` refers to a group the pattern does not name",
            ),
            ("${1a}", "is not a group name"),
            ("${word", "`${word` is not a group reference"),
        ] {
            let e = java_replacement(java, &two).unwrap_err();
            assert!(e.contains(says), "{java}: {e}");
        }
    }

    #[test]
    fn java_date_patterns_translate_to_chrono_formats() {
        let ok = |java: &str| java_date_format(java).unwrap();
        assert_eq!(ok("yyyy-MM-dd HH:mm:ss"), "%Y-%m-%d %H:%M:%S");
        assert_eq!(ok("yyyy-MM-dd'T'HH:mm:ss.SSSZ"), "%Y-%m-%dT%H:%M:%S.%3f%z");
        assert_eq!(ok("yy/M/d h:mm a"), "%y/%m/%d %I:%M %p");
        assert_eq!(ok("EEE, dd MMM yyyy"), "%a, %d %b %Y");
        assert_eq!(ok("'o''clock' '' 100%"), "o'clock ' 100%%");
        for (java, says) in [
            ("yyyy-ww", "`ww` is not supported"),
            ("yyyy-DDD", "`DDD` is not supported"),
            ("HH 'h", "a quote is not closed"),
            ("SS", "`SS` is not supported"),
        ] {
            let e = java_date_format(java).unwrap_err();
            assert!(e.contains(says), "{java}: {e}");
        }
    }
}
