//! A small reader for Python literals (what `ast.literal_eval` reads), for dict options given as a string
//! such as `"{'a': 1, 'b': [True, None]}"`: dicts, lists, tuples, strings, numbers, `True`, `False`, `None`.
//! Anything else (sets, bytes, expressions) is `None`, which the caller reports as not a dictionary.

use serde_json::{Map, Number, Value};

/// Parses the whole text as one literal.
pub fn parse(text: &str) -> Option<Value> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let v = p.value()?;
    p.skip_ws();
    (p.pos == p.chars.len()).then_some(v)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(c) if c.is_whitespace()) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_ws();
        match self.peek()? {
            '{' => self.dict(),
            '[' => self.seq('[', ']').map(Value::Array),
            '(' => self.seq('(', ')').map(Value::Array),
            '\'' | '"' => self.string().map(Value::String),
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number(),
            _ => self.word(),
        }
    }

    fn dict(&mut self) -> Option<Value> {
        self.pos += 1;
        let mut m = Map::new();
        loop {
            if self.eat('}') {
                return Some(Value::Object(m));
            }
            let key = json_key(self.value()?)?;
            if !self.eat(':') {
                return None;
            }
            let v = self.value()?;
            m.insert(key, v);
            if !self.eat(',') {
                return self.eat('}').then_some(Value::Object(m));
            }
        }
    }

    fn seq(&mut self, open: char, close: char) -> Option<Vec<Value>> {
        debug_assert_eq!(self.peek(), Some(open));
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if !self.eat(',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                c if c == quote => return Some(out),
                '\n' => return None,
                '\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        '\n' => {}
                        'x' => out.push(self.hex(2)?),
                        'u' => out.push(self.hex(4)?),
                        'U' => out.push(self.hex(8)?),
                        other => {
                            // Python keeps an unknown escape as written.
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex(&mut self, n: usize) -> Option<char> {
        let digits: String = self.chars.get(self.pos..self.pos + n)?.iter().collect();
        self.pos += n;
        char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || "+-._".contains(c)) {
            // A sign only starts the number or follows an exponent marker.
            let c = self.peek()?;
            if (c == '+' || c == '-')
                && self.pos > start
                && !matches!(self.chars[self.pos - 1], 'e' | 'E')
            {
                break;
            }
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let clean = text.replace('_', "");
        if let Ok(i) = clean.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Ok(u) = clean.parse::<u64>() {
            return Some(Value::from(u));
        }
        let f = clean.parse::<f64>().ok()?;
        Number::from_f64(f).map(Value::Number)
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let w: String = self.chars[start..self.pos].iter().collect();
        match w.as_str() {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => None,
        }
    }
}

/// A dict key as JSON writes it (`json.dumps` turns 1 into "1", True into "true", None into "null").
fn json_key(key: Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_python_literals() {
        assert_eq!(
            parse("{'a': 1, \"b\": [True, None, (1.5, -2)], 'c': {'d': 'x\\'y'},}"),
            Some(json!({"a": 1, "b": [true, null, [1.5, -2]], "c": {"d": "x'y"}}))
        );
        assert_eq!(parse("{'a': set()}"), None);
        assert_eq!(parse("{'a': 1"), None);
        assert_eq!(parse("{'a': 1} x"), None);
    }
}
