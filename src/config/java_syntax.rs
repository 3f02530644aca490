//! Java syntax inside Flume configuration values, turned into what weir's libraries read: Java
//! regular expressions (interceptors, spooldir and TAILDIR file patterns) and the replacement
//! strings of `Matcher.replaceAll` (search_replace's `replaceString`) into the regex crate's,
//! and `SimpleDateFormat`/Joda date patterns (regex_extractor's millis serializer) into
//! chrono's. Hand-written because no crate translates between these syntaxes; both run once,
//! when the configuration is read, so a value Java would only fail on at run time is refused at
//! start with its key and line.

/// Translates a Java regular expression (`Pattern.compile` without flags, as Flume compiles
/// every pattern, on Java 8 to 17) into the regex crate's syntax, keeping what Java's defaults
/// mean where the crate's differ:
/// - `\w \d \s` (and `\W \D \S`) are ASCII in Java: `\w` is `[a-zA-Z_0-9]`, so `^\w+$` does not
///   match `Müller`; the crate's are Unicode. Inside a class too. (`\b` stays Unicode: before
///   Java 19 it asked `Character.isLetterOrDigit`, whatever `\w` means.)
/// - The POSIX classes `\p{Alpha}`, `\p{Digit}`, `\p{Punct}`, … (and `\P{…}`) are ASCII in Java;
///   their `Is` forms (`\p{IsAlpha}`) are Unicode, as the crate reads them.
/// - `\h`, `\v`, `\R`, `\e`, `\cX` and octal `\0nn` are Java's; the crate has none or others.
/// - `[` inside a class starts a nested class in Java, so `[[:digit:]]` is the characters
///   `:digit`, where the crate reads a POSIX bracket.
/// - `\Q…\E` quotes literally (the crate has no such syntax).
/// - The inline flag `U` (`UNICODE_CHARACTER_CLASS`) makes the classes Unicode, as the crate's
///   are, where the crate's own `U` would swap greediness; `d` (`UNIX_LINES`) is the crate's
///   default. Both are taken out of the flags.
///
/// - `.` stops at every line terminator (`\n`, `\r`, U+0085, U+2028, U+2029) unless the
///   pattern sets `s`; the crate's stops at `\n` only.
///
/// A possessive quantifier (`a*+`) is refused: the crate cannot give up backtracking, and read
/// as greedy it would match what Java's does not. Left different, and said so in the README:
/// `(?i)` folds case for all of Unicode (Java only for ASCII without `u`); `$` does not match
/// before a final line terminator.
pub fn java_pattern(java: &str) -> Result<String, String> {
    const WORD: &str = "0-9A-Za-z_";
    const DIGIT: &str = "0-9";
    const SPACE: &str = "\\t\\n\\x0B\\f\\r ";
    const HORIZONTAL: &str =
        " \\t\\xA0\\x{1680}\\x{180e}\\x{2000}-\\x{200a}\\x{202f}\\x{205f}\\x{3000}";
    const VERTICAL: &str = "\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}";
    const VERTICAL_LINE_ENDS: &str = "\\n\\r\\x{85}\\x{2028}\\x{2029}";
    fn posix(name: &str) -> Option<&'static str> {
        Some(match name {
            "Lower" => "a-z",
            "Upper" => "A-Z",
            "ASCII" => "\\x00-\\x7F",
            "Alpha" => "a-zA-Z",
            "Digit" => "0-9",
            "Alnum" => "a-zA-Z0-9",
            "Punct" => "!-/:-@\\[-`{-~",
            "Graph" => "!-~",
            "Print" => " -~",
            "Blank" => " \\t",
            "Cntrl" => "\\x00-\\x1F\\x7F",
            "XDigit" => "0-9a-fA-F",
            "Space" => "\\t\\n\\x0B\\f\\r ",
            _ => return None,
        })
    }
    let set =
        |members: &str, negated: bool| format!("[{}{members}]", if negated { "^" } else { "" });
    let chars: Vec<char> = java.chars().collect();
    let unicode_classes = has_flag(&chars, 'U');
    // Without DOTALL (`s`), Java's `.` stops at every line terminator, the crate's at `\n` only.
    let dot_all = has_flag(&chars, 's');
    let mut out = String::with_capacity(java.len() + 16);
    // Nesting depth of character classes, and whether the next char is a class's first.
    let mut depth = 0usize;
    let mut class_start = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let first_in_class = std::mem::take(&mut class_start);
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    out.push(c);
                    break;
                };
                i += 2;
                match e {
                    'Q' => {
                        let end = (i..chars.len().saturating_sub(1))
                            .find(|&j| chars[j] == '\\' && chars[j + 1] == 'E');
                        let stop = end.unwrap_or(chars.len());
                        let quoted: String = chars[i..stop].iter().collect();
                        out.push_str(&regex::escape(&quoted));
                        i = end.map(|j| j + 2).unwrap_or(chars.len());
                    }
                    'w' | 'W' | 'd' | 'D' | 's' | 'S' if !unicode_classes => {
                        let members = match e.to_ascii_lowercase() {
                            'w' => WORD,
                            'd' => DIGIT,
                            _ => SPACE,
                        };
                        out.push_str(&set(members, e.is_ascii_uppercase()));
                    }
                    'h' | 'H' => out.push_str(&set(HORIZONTAL, e == 'H')),
                    'v' | 'V' => out.push_str(&set(VERTICAL, e == 'V')),
                    'R' if depth == 0 => out.push_str(&format!("(?:\\r\\n|[{VERTICAL}])")),
                    'e' => out.push_str("\\x1B"),
                    'c' if chars.get(i).is_some_and(|x| x.is_ascii()) => {
                        out.push_str(&format!("\\x{:02X}", chars[i] as u32 ^ 64));
                        i += 1;
                    }
                    '0' => {
                        // Java's octal: up to three digits, the first of three at most 3.
                        let digits: String = chars[i..]
                            .iter()
                            .take(3)
                            .take_while(|d| d.is_digit(8))
                            .collect();
                        let digits = match digits.len() {
                            3 if digits.as_bytes()[0] > b'3' => &digits[..2],
                            _ => &digits[..],
                        };
                        let value = u32::from_str_radix(digits, 8)
                            .map_err(|_| "`\\0` takes an octal number after it".to_owned())?;
                        out.push_str(&format!("\\x{{{value:x}}}"));
                        i += digits.len();
                    }
                    'p' | 'P' if chars.get(i) == Some(&'{') => {
                        let close = chars[i..].iter().position(|&ch| ch == '}').map(|k| i + k);
                        let name: Option<String> = close.map(|k| chars[i + 1..k].iter().collect());
                        let ascii = name.as_deref().and_then(posix).filter(|_| !unicode_classes);
                        match (ascii, close) {
                            (Some(members), Some(k)) => {
                                out.push_str(&set(members, e == 'P'));
                                i = k + 1;
                            }
                            _ => {
                                out.push('\\');
                                out.push(e);
                            }
                        }
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                continue;
            }
            '[' => {
                if depth > 0 && chars.get(i + 1) == Some(&':') {
                    // Java: a nested class whose first member is ':'.
                    out.push_str("[\\:");
                    i += 2;
                } else {
                    out.push('[');
                    i += 1;
                    if chars.get(i) == Some(&'^') {
                        out.push('^');
                        i += 1;
                    }
                }
                depth += 1;
                class_start = true;
                continue;
            }
            ']' if depth > 0 && !first_in_class => depth -= 1,
            '(' if depth == 0 && chars.get(i + 1) == Some(&'?') => {
                // Inline flags `(?idmsux-idmsux)` or `(?flags:`: Java's `U` and `d` have no
                // counterpart to keep (see above).
                let flags_end = chars[i + 2..]
                    .iter()
                    .position(|ch| !(ch.is_ascii_alphabetic() || *ch == '-'))
                    .map(|k| i + 2 + k);
                if let Some(end) = flags_end
                    && matches!(chars[end], ')' | ':')
                    && end > i + 2
                {
                    let flags: String = chars[i + 2..end]
                        .iter()
                        .filter(|ch| !matches!(ch, 'U' | 'd'))
                        .collect();
                    let flags = flags.trim_end_matches('-');
                    if flags.is_empty() && chars[end] == ')' {
                        i = end + 1;
                        continue;
                    }
                    out.push_str("(?");
                    out.push_str(flags);
                    out.push(chars[end]);
                    i = end + 1;
                    continue;
                }
            }
            '.' if depth == 0 && !dot_all => {
                out.push_str(&format!("[^{VERTICAL_LINE_ENDS}]"));
                i += 1;
                continue;
            }
            // A quantifier followed by `+` is possessive.
            '*' | '+' | '?' | '}' if depth == 0 => {
                out.push(c);
                i += 1;
                let after_open = i.checked_sub(2).and_then(|k| chars.get(k)) == Some(&'(');
                if !(matches!(c, '*' | '+' | '?') && after_open) {
                    possessive(&chars, i)?;
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

/// `java` compiled as the regex crate reads it once translated ([`java_pattern`]); the error
/// says what is wrong.
pub fn java_regex(java: &str) -> Result<regex::Regex, String> {
    compiled(&java_pattern(java)?, java)
}

/// [`java_regex`] matching only a whole text, as Java's `Matcher.matches()` does.
pub fn java_regex_whole(java: &str) -> Result<regex::Regex, String> {
    compiled(&format!("^(?:{})$", java_pattern(java)?), java)
}

/// `translated` compiled. Its error is told on the pattern as the user wrote it when the crate
/// refuses that too (the position then points into the user's text, not the translation).
fn compiled(translated: &str, java: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(translated).map_err(|e| match regex::Regex::new(java) {
        Err(as_written) => as_written.to_string(),
        Ok(_) => e.to_string(),
    })
}

/// Refuses a possessive quantifier (`*+`, `++`, `?+`, `{n,m}+`) ending just before `at`.
fn possessive(chars: &[char], at: usize) -> Result<(), String> {
    let quantifier = match at.checked_sub(1).map(|k| chars[k]) {
        Some('*' | '+' | '?') => true,
        Some('}') => {
            let open = chars[..at - 1].iter().rposition(|&c| c == '{');
            open.is_some_and(|o| {
                let inner: String = chars[o + 1..at - 1].iter().collect();
                let mut parts = inner.splitn(2, ',');
                parts
                    .next()
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|d| d.is_ascii_digit()))
                    && parts
                        .next()
                        .is_none_or(|m| m.chars().all(|d| d.is_ascii_digit()))
            })
        }
        _ => false,
    };
    // `a++` is possessive; in `a+?` the `?` makes it lazy, which the crate has.
    if quantifier && chars.get(at) == Some(&'+') {
        return Err(format!(
            "the possessive quantifier `{}+` (at character {}) cannot be read: the regex crate \
             has no possessive quantifiers or atomic groups; use a greedy one if the pattern \
             matches the same without giving back",
            chars[at - 1],
            at
        ));
    }
    Ok(())
}

/// Whether the pattern turns on `flag` with an inline flag group (`(?U)`, `(?s:…)`; not inside
/// a class, not after a `\`). `U`: its classes are Unicode, as the crate's are; `s`: its `.`
/// matches line terminators. Either is then left to the crate for the whole pattern.
fn has_flag(chars: &[char], flag: char) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1) == Some(&'Q') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '\\' && chars[j + 1] == 'E');
                i = end.map(|j| j + 2).unwrap_or(chars.len());
                continue;
            }
            '\\' => i += 1,
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            '(' if depth == 0 && chars.get(i + 1) == Some(&'?') => {
                let on: String = chars[i + 2..]
                    .iter()
                    .take_while(|ch| ch.is_ascii_alphabetic())
                    .collect();
                let ends_flags = chars
                    .get(i + 2 + on.len())
                    .is_some_and(|ch| matches!(ch, ')' | ':' | '-'));
                if ends_flags && on.contains(flag) {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

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
            // Joda reads `Z` for a zero offset too (ISO 8601 stamps end in it), and `+01:00`.
            ('Z', _) => "%#z",
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

    /// Java's character classes are ASCII by default, as Flume compiles every pattern: a
    /// filter such as `^\w+ \d+$` keeps `plain 42` and not `Müller 7` (audits 27 and 29,
    /// which compared these with JDK 17).
    #[test]
    fn java_patterns_keep_javas_ascii_classes() {
        let matches = |java: &str, text: &str| {
            java_regex(java)
                .unwrap_or_else(|e| panic!("{java}: {e}"))
                .is_match(text)
        };
        let found = |java: &str, text: &str| -> Vec<String> {
            let re = java_regex(java).unwrap_or_else(|e| panic!("{java}: {e}"));
            re.find_iter(text).map(|m| m.as_str().to_owned()).collect()
        };
        assert!(matches(r"^\w+ \d+$", "plain 42"));
        for text in ["Müller 7", "日本 1", "abc ١٢٣"] {
            assert!(!matches(r"^\w+ \d+$", text), "{text}");
        }
        assert!(!matches(r"^a\sb$", "a\u{a0}b"));
        assert!(matches(r"^a\Sb$", "a\u{a0}b"));
        assert!(matches(r"^[\w.]+$", "a.b_1"));
        assert!(!matches(r"^[\w.]+$", "ü.b"));
        assert!(matches(r"^[^\d]+$", "abc"));
        assert!(matches(r"^\p{Alpha}+$", "abc"));
        assert!(!matches(r"^\p{Alpha}+$", "äbc"));
        assert!(matches(r"^\P{Digit}$", "x"));
        // The `Is` forms and Unicode properties are Unicode in Java too.
        assert!(matches(r"^\p{IsAlphabetic}+$", "äbc"));
        assert!(matches(r"^\p{IsDigit}+$", "١٢٣"));
        assert!(matches(r"^\p{L}+$", "äbc"));
        // `\b` is Unicode before Java 19: `é` is a letter next to `caf`.
        assert_eq!(found(r"\b[a-zé]+\b", "café été"), ["café", "été"]);
        assert!(!matches(r"\berror\b", "日error本"));
        // A POSIX bracket is a nested class of its characters in Java.
        assert!(!matches(r"^[[:digit:]]+$", "123"));
        assert!(matches(r"^[[:digit:]]+$", "dig"));
        // \Q…\E quotes.
        assert!(matches(r"^\Qa.b*\E$", "a.b*"));
        assert!(!matches(r"^\Qa.b*\E$", "axb"));
        // (?U) makes the classes Unicode, and is not the crate's ungreedy flag; an escaped
        // `\(?U` is no flag group.
        assert!(matches(r"(?U)^\w+$", "Müller"));
        assert!(matches(r"(?iU)^m\w+$", "Müller"));
        assert_eq!(found(r"\(?Unit\)? \w+", "Unit café"), ["Unit caf"]);
        assert_eq!(java_pattern(r"(?U)a+").unwrap(), "a+");
        assert_eq!(java_pattern(r"(?i)x").unwrap(), "(?i)x");
        // Java's other escapes.
        assert!(matches(r"^a\hb$", "a\u{3000}b"));
        assert!(matches(r"^a\vb$", "a\nb"));
        assert!(matches(r"^a\Rb$", "a\r\nb"));
        assert!(matches(r"^\e\cA$", "\u{1b}\u{1}"));
        assert!(matches(r"^\0101\07$", "A\u{7}"));
        // `.` stops at every line terminator, unless DOTALL.
        assert!(!matches(r"a.b", "a\rb"));
        assert!(!matches(r"a.b", "a\u{2028}b"));
        assert!(matches(r"a.b", "a\u{e9}b"));
        assert!(matches(r"[.]", "."));
        assert!(!matches(r"[.]", "x"));
        assert!(matches(r"(?s)a.b", "a\rb"));
        // Possessive quantifiers are refused, not read as greedy ones.
        for possessive in [r"a*+a", r"\d++\d", r#"".*+""#, r"x{2,3}+", r"[ab]?+"] {
            let e = java_pattern(possessive).unwrap_err();
            assert!(e.contains("possessive"), "{possessive}: {e}");
        }
        for not_possessive in [r"a+?", r"(+)", r"[+*]+", r"\++", r"a{2}b+"] {
            assert!(java_pattern(not_possessive).is_ok(), "{not_possessive}");
        }
        // An error shows the pattern as written, not its translation.
        let e = java_regex_whole("*.log").unwrap_err();
        assert!(e.contains("*.log") && !e.contains("x{2028}"), "{e}");
        // What needs no translation is left as it is.
        assert_eq!(
            java_pattern(r"^(a|b)[x-z]{2,3}\.\\$").unwrap(),
            r"^(a|b)[x-z]{2,3}\.\\$"
        );
        assert_eq!(java_pattern(r"[]a]").unwrap(), r"[]a]");
    }

    /// Any text at all is translated without a panic: it comes from a user's file.
    #[test]
    fn java_patterns_of_any_text_never_panic() {
        let alphabet: Vec<char> = r"\[]{}()*+?.^$|-:,0123QEwdsbpPUuicvhRe&<>=!xé"
            .chars()
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5_000 {
            let len = (state % 12) as usize;
            let mut text = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = java_regex(&text);
            let _ = java_regex_whole(&text);
        }
    }

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
        assert_eq!(ok("yyyy-MM-dd'T'HH:mm:ss.SSSZ"), "%Y-%m-%dT%H:%M:%S.%3f%#z");
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
