//! Where a value sits in a JSON text, by path (`static_leases[2].addr`), so a
//! configuration value that parsed but does not make sense (a pool outside the
//! subnet) is reported with its file, line and column like a syntax error.
//!
//! A small scanner, not a parser: it assumes the text is valid JSON (serde has
//! accepted it already) and only skips over values to reach the one named.

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A member of an object.
    Key(&'static str),
    /// An element of an array.
    Index(usize),
}

impl std::fmt::Display for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(k) => write!(f, ".{k}"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// `a.b[2].c` for people.
#[must_use]
pub fn display(path: &[Seg]) -> String {
    let text: String = path.iter().map(ToString::to_string).collect();
    text.strip_prefix('.').map(str::to_owned).unwrap_or(text)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    let s = &self.b[start..self.i];
                    self.i += 1;
                    return Some(s);
                }
                _ => self.i += 1,
            }
        }
    }

    fn value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        self.eat(b':')?;
                    }
                    self.value()?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                while self.peek().is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace()) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    fn find(&mut self, path: &[Seg]) -> Option<usize> {
        self.ws();
        let Some((first, rest)) = path.split_first() else {
            return Some(self.i);
        };
        match first {
            Seg::Key(key) => {
                self.eat(b'{')?;
                loop {
                    self.ws();
                    if self.peek()? == b'}' {
                        return None;
                    }
                    let k = self.string()?;
                    self.eat(b':')?;
                    if k == key.as_bytes() {
                        return self.find(rest);
                    }
                    self.value()?;
                    self.eat(b',')?;
                }
            }
            Seg::Index(n) => {
                self.eat(b'[')?;
                let mut idx = 0;
                loop {
                    self.ws();
                    if self.peek()? == b']' {
                        return None;
                    }
                    if idx == *n {
                        return self.find(rest);
                    }
                    self.value()?;
                    self.eat(b',')?;
                    idx += 1;
                }
            }
        }
    }
}

/// The 1-based line and column of the value at `path` in `text`, if it is there.
#[must_use]
pub fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let offset = Scanner { b: text.as_bytes(), i: 0 }.find(path)?;
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    Some((line, offset - line_start + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{\n\t\"subnet\": \"10.0.0.0/24\",\n\t\"x\": {\"y\": [1, {\"z\": \"a\\\"b\"}]},\n\t\"static_leases\": [\n\t\t{\"addr\": \"10.0.0.5\"},\n\t\t{\"hardware_addr\": \"aa\", \"addr\": \"10.0.1.5\"}\n\t]\n}\n";

    #[test]
    fn finds_values_by_path() {
        assert_eq!(locate(TEXT, &[Seg::Key("subnet")]), Some((2, 12)));
        assert_eq!(locate(TEXT, &[Seg::Key("static_leases"), Seg::Index(1), Seg::Key("addr")]), Some((6, 35)));
        assert_eq!(locate(TEXT, &[Seg::Key("static_leases"), Seg::Index(0)]), Some((5, 3)));
        assert_eq!(locate(TEXT, &[]), Some((1, 1)));
    }

    #[test]
    fn missing_paths_are_none() {
        assert_eq!(locate(TEXT, &[Seg::Key("pool")]), None);
        assert_eq!(locate(TEXT, &[Seg::Key("static_leases"), Seg::Index(2)]), None);
        assert_eq!(locate(TEXT, &[Seg::Key("subnet"), Seg::Key("x")]), None);
        assert_eq!(locate("{", &[Seg::Key("a")]), None);
    }

    #[test]
    fn displays_paths() {
        assert_eq!(display(&[Seg::Key("static_leases"), Seg::Index(2), Seg::Key("addr")]), "static_leases[2].addr");
    }
}
