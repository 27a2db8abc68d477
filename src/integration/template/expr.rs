//! Expression and reference parsing: literals, operators by precedence, `$a.b('x')[0]` chains.
//! Double-quoted strings with `$` in them are parsed again as text-with-references.

use memchr::memchr;

use super::ast::{BinOp, Expr, Ref, Seg};
use super::parse::{ident_char, ident_start, Parser, MAX_SEGS};
use super::CompileError;

type R<T> = Result<T, CompileError>;

fn bin(op: BinOp, l: Expr, r: Expr) -> Expr {
    Expr::Bin(op, Box::new(l), Box::new(r))
}

/// End of a property name: identifier characters, and `-` between them (Velocity 1.7 allows
/// `$context.requestOverride.header.X-Custom`).
fn prop_end(b: &[u8], mut j: usize) -> usize {
    loop {
        match b.get(j) {
            Some(c) if ident_char(*c) => j += 1,
            Some(b'-') if b.get(j + 1).is_some_and(|c| ident_char(*c)) => j += 1,
            _ => return j,
        }
    }
}

impl Parser<'_> {
    pub(crate) fn expr(&mut self) -> R<Expr> {
        self.enter(self.pos)?;
        let e = self.or()?;
        self.leave();
        Ok(e)
    }

    fn or(&mut self) -> R<Expr> {
        let mut l = self.and()?;
        loop {
            self.ws();
            if !(self.sym("||") || self.word("or")) {
                return Ok(l);
            }
            l = bin(BinOp::Or, l, self.and()?);
        }
    }

    fn and(&mut self) -> R<Expr> {
        let mut l = self.equality()?;
        loop {
            self.ws();
            if !(self.sym("&&") || self.word("and")) {
                return Ok(l);
            }
            l = bin(BinOp::And, l, self.equality()?);
        }
    }

    fn equality(&mut self) -> R<Expr> {
        let mut l = self.relation()?;
        loop {
            self.ws();
            let op = if self.sym("==") || self.word("eq") {
                BinOp::Eq
            } else if self.sym("!=") || self.word("ne") {
                BinOp::Ne
            } else {
                return Ok(l);
            };
            l = bin(op, l, self.relation()?);
        }
    }

    fn relation(&mut self) -> R<Expr> {
        let mut l = self.additive()?;
        loop {
            self.ws();
            let op = if self.sym("<=") || self.word("le") {
                BinOp::Le
            } else if self.sym(">=") || self.word("ge") {
                BinOp::Ge
            } else if self.sym("<") || self.word("lt") {
                BinOp::Lt
            } else if self.sym(">") || self.word("gt") {
                BinOp::Gt
            } else {
                return Ok(l);
            };
            l = bin(op, l, self.additive()?);
        }
    }

    fn additive(&mut self) -> R<Expr> {
        let mut l = self.multiplicative()?;
        loop {
            self.ws();
            let op = if self.sym("+") {
                BinOp::Add
            } else if self.sym("-") {
                BinOp::Sub
            } else {
                return Ok(l);
            };
            l = bin(op, l, self.multiplicative()?);
        }
    }

    fn multiplicative(&mut self) -> R<Expr> {
        let mut l = self.unary()?;
        loop {
            self.ws();
            let op = if self.sym("*") {
                BinOp::Mul
            } else if self.sym("/") {
                BinOp::Div
            } else if self.sym("%") {
                BinOp::Mod
            } else {
                return Ok(l);
            };
            l = bin(op, l, self.unary()?);
        }
    }

    fn unary(&mut self) -> R<Expr> {
        self.ws();
        let at = self.pos;
        let neg = if self.peek() == Some(b'!') && !self.src[self.pos..].starts_with("!=") {
            self.pos += 1;
            false
        } else if self.word("not") {
            false
        } else if self.sym("-") {
            true
        } else {
            return self.primary();
        };
        self.enter(at)?;
        let inner = Box::new(self.unary()?);
        self.leave();
        Ok(if neg { Expr::Neg(inner) } else { Expr::Not(inner) })
    }

    fn primary(&mut self) -> R<Expr> {
        self.ws();
        let at = self.pos;
        match self.peek() {
            None => Err(self.err(at, "unexpected end of template in expression")),
            Some(b'"') => self.dstring(),
            Some(b'\'') => self.sstring(),
            Some(c) if c.is_ascii_digit() => self.number(),
            Some(b'[') => self.list(),
            Some(b'{') => self.map(),
            Some(b'(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(b')', "to close '('")?;
                Ok(e)
            }
            Some(b'$') => match self.reference(true)? {
                Some(r) => Ok(Expr::Ref(Box::new(r))),
                None => Err(self.err(at, "malformed reference after '$'")),
            },
            Some(c) if ident_start(c) => {
                if self.word("true") {
                    return Ok(Expr::Bool(true));
                }
                if self.word("false") {
                    return Ok(Expr::Bool(false));
                }
                if self.word("null") {
                    return Ok(Expr::Null);
                }
                let b = self.src.as_bytes();
                let mut j = at;
                while b.get(j).is_some_and(|c| ident_char(*c)) {
                    j += 1;
                }
                Err(self.err(at, format!("unexpected '{}' in expression", &self.src[at..j])))
            }
            Some(_) => {
                let c = self.src[at..].chars().next().unwrap_or('?');
                Err(self.err(at, format!("unexpected character '{c}' in expression")))
            }
        }
    }

    fn number(&mut self) -> R<Expr> {
        let b = self.src.as_bytes();
        let at = self.pos;
        let mut j = at;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            j += 1;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            self.pos = j;
            return self.src[at..j].parse().map(Expr::Float).map_err(|_| self.err(at, "malformed number"));
        }
        self.pos = j;
        self.src[at..j].parse().map(Expr::Int).map_err(|_| self.err(at, "integer literal out of range"))
    }

    fn list(&mut self) -> R<Expr> {
        let at = self.pos;
        self.pos += 1;
        self.ws();
        if self.sym("]") {
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.expr()?;
        self.ws();
        if self.sym("..") {
            let hi = self.expr()?;
            self.expect(b']', "to close the range")?;
            return Ok(Expr::Range(Box::new(first), Box::new(hi)));
        }
        let mut items = vec![first];
        loop {
            self.ws();
            if self.sym(",") {
                items.push(self.expr()?);
            } else if self.sym("]") {
                return Ok(Expr::List(items));
            } else if self.peek().is_none() {
                return Err(self.err(at, "unterminated list: missing ']'"));
            } else {
                return Err(self.err(self.pos, "expected ',' or ']' in list"));
            }
        }
    }

    fn map(&mut self) -> R<Expr> {
        let at = self.pos;
        self.pos += 1;
        self.ws();
        if self.sym("}") {
            return Ok(Expr::Map(Vec::new()));
        }
        let mut pairs = Vec::new();
        loop {
            let k = self.expr()?;
            self.expect(b':', "after a map key")?;
            let v = self.expr()?;
            pairs.push((k, v));
            self.ws();
            if self.sym(",") {
                continue;
            }
            if self.sym("}") {
                return Ok(Expr::Map(pairs));
            }
            if self.peek().is_none() {
                return Err(self.err(at, "unterminated map: missing '}'"));
            }
            return Err(self.err(self.pos, "expected ',' or '}' in map"));
        }
    }

    /// `'text'`: no interpolation; `''` stands for one quote (Velocity 1.7).
    fn sstring(&mut self) -> R<Expr> {
        let b = self.src.as_bytes();
        let at = self.pos;
        let mut s = String::new();
        let mut j = at + 1;
        loop {
            let Some(k) = memchr(b'\'', &b[j..]) else { return Err(self.err(at, "unterminated string")) };
            let q = j + k;
            if b.get(q + 1) == Some(&b'\'') {
                s.push_str(&self.src[j..=q]);
                j = q + 2;
            } else {
                s.push_str(&self.src[j..q]);
                self.pos = q + 1;
                return Ok(Expr::Str(s.into_boxed_str()));
            }
        }
    }

    /// `"text $ref"`: interpolated; `""` and `\"` stand for one quote, other backslashes stay.
    fn dstring(&mut self) -> R<Expr> {
        let b = self.src.as_bytes();
        let at = self.pos;
        let mut s = String::new();
        let mut seg = at + 1;
        let mut j = at + 1;
        loop {
            match b.get(j) {
                None => return Err(self.err(at, "unterminated string")),
                Some(b'\\') if b.get(j + 1) == Some(&b'"') => {
                    s.push_str(&self.src[seg..j]);
                    s.push('"');
                    j += 2;
                    seg = j;
                }
                Some(b'\\') if b.get(j + 1) == Some(&b'\\') => j += 2,
                Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                    s.push_str(&self.src[seg..=j]);
                    j += 2;
                    seg = j;
                }
                Some(b'"') => {
                    s.push_str(&self.src[seg..j]);
                    self.pos = j + 1;
                    break;
                }
                Some(_) => j += 1,
            }
        }
        if !s.contains('$') {
            return Ok(Expr::Str(s.into_boxed_str()));
        }
        let mut sub = Parser {
            src: &s,
            full: self.full,
            base: self.base + at + 1,
            pos: 0,
            depth: self.depth,
            slots: std::mem::take(&mut self.slots),
            in_string: true,
        };
        let r = sub.enter(0).and_then(|()| sub.nodes());
        self.slots = std::mem::take(&mut sub.slots);
        Ok(Expr::Interp(r?.0))
    }

    /// A reference at `$`; `None` when the `$` starts no reference (it is then literal text).
    /// In text, a `[` that does not hold an index ends the reference; in expressions it is an error.
    pub(crate) fn reference(&mut self, in_expr: bool) -> R<Option<Ref>> {
        let src = self.src;
        let b = src.as_bytes();
        let start = self.pos;
        let mut j = start + 1;
        let quiet = b.get(j) == Some(&b'!');
        j += usize::from(quiet);
        let formal = b.get(j) == Some(&b'{');
        j += usize::from(formal);
        if !b.get(j).is_some_and(|c| ident_start(*c)) {
            return Ok(None);
        }
        let mut e = j;
        while b.get(e).is_some_and(|c| ident_char(*c)) {
            e += 1;
        }
        let root = self.root(&src[j..e]);
        self.pos = e;
        let mut segs = Vec::new();
        loop {
            match b.get(self.pos) {
                Some(b'.') if b.get(self.pos + 1).is_some_and(|c| ident_start(*c)) => {
                    let s = self.pos + 1;
                    let e = prop_end(b, s);
                    let name: Box<str> = src[s..e].into();
                    self.pos = e;
                    if b.get(e) == Some(&b'(') {
                        self.pos += 1;
                        let args = self.args()?;
                        segs.push(Seg::Call(name, args));
                    } else {
                        segs.push(Seg::Prop(name));
                    }
                }
                Some(b'[') => {
                    let save = (self.pos, self.depth);
                    self.pos += 1;
                    let idx = match self.expr() {
                        Ok(x) => {
                            self.ws();
                            self.sym("]").then_some(x)
                        }
                        Err(e) if in_expr => return Err(e),
                        Err(_) => None,
                    };
                    match idx {
                        Some(x) => segs.push(Seg::Index(x)),
                        None if in_expr => return Err(self.err(self.pos, "expected ']' after index")),
                        None => {
                            (self.pos, self.depth) = save;
                            break;
                        }
                    }
                }
                _ => break,
            }
            if segs.len() > MAX_SEGS {
                return Err(self.err(start, format!("reference longer than {MAX_SEGS} steps")));
            }
        }
        if formal {
            if b.get(self.pos) != Some(&b'}') {
                return Err(self.err(start, "unclosed ${...}: expected '}'"));
            }
            self.pos += 1;
        }
        Ok(Some(Ref { root, segs, quiet, src: src[start..self.pos].into() }))
    }

    fn args(&mut self) -> R<Vec<Expr>> {
        let at = self.pos;
        self.ws();
        let mut args = Vec::new();
        if self.sym(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.ws();
            if self.sym(",") {
                continue;
            }
            if self.sym(")") {
                return Ok(args);
            }
            if self.peek().is_none() {
                return Err(self.err(at, "unterminated method arguments: missing ')'"));
            }
            return Err(self.err(self.pos, "expected ',' or ')' in method arguments"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{cerr, r};

    #[test]
    fn literals() {
        assert_eq!(r("#set($a = 42)$a #set($b = 1.5)$b #set($c = true)$c #set($d = 'x')$d"), "42 1.5 true x");
        assert_eq!(r("#set($l = [1, 'a', [2], {'k': 3}])$l"), r#"[1,"a",[2],{"k":3}]"#);
        assert_eq!(r("#set($m = {})$m #set($e = [])$e"), "{} []");
        assert_eq!(r("#set($n = null)$!n|"), "|");
    }

    #[test]
    fn strings() {
        assert_eq!(r(r#"#set($n = "World")#set($s = "Hello $n ${n}!")$s"#), "Hello World World!");
        assert_eq!(r("#set($s = 'no $interp')$s"), "no $interp");
        assert_eq!(r(r#"#set($s = 'it''s')$s"#), "it's");
        assert_eq!(r(r#"#set($s = "say ""hi"" \"x\"")$s"#), r#"say "hi" "x""#);
        assert_eq!(r(r#"#set($s = "a\nb\$c")$s"#), r"a\nb$c");
        assert_eq!(r(r#"#set($s = "$input.params('q')-$!missing")$s"#), "cats-");
        assert_eq!(r(r##"#set($s = "#if")$s"##), "#if");
    }

    #[test]
    fn operators() {
        assert_eq!(r("#set($x = 1 + 2 * 3 - 4 / 2 % 3)$x"), "5");
        assert_eq!(r("#set($x = (1 + 2) * 3)$x #set($y = -$x)$y #set($z = - 2)$z"), "9 -9 -2");
        assert_eq!(r("#if(1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3 && 1 != 2 && 1 == 1)y#end"), "y");
        assert_eq!(r("#if(1 lt 2 and 2 le 2 and 3 gt 2 and 3 ge 3 and 1 ne 2 and 1 eq 1)y#end"), "y");
        assert_eq!(r("#if(false || !false)a#end#if(false or not false)b#end#if(!(1 == 1))c#end"), "ab");
        assert_eq!(r("#if($nope == $nada)eq#end"), "eq");
    }

    #[test]
    fn references() {
        assert_eq!(r("$input.path('$.nested').a.b ${input.path('$.s')} $!{nope}|$nope"), "true hi |$nope");
        assert_eq!(r("#set($m = {'k-1': 'v'})$m['k-1'] $m.k-1"), "v v");
        assert_eq!(r("${context.stage}s $context.stage.s"), "prods $context.stage.s");
        assert_eq!(r("$foo[ x"), "$foo[ x");
        assert_eq!(r("#set($l = [5, 6])$l[1]$l[-1] $l[9]"), "66 $l[9]");
        assert_eq!(r("user@$context.stage.com"), "user@$context.stage.com");
    }

    #[test]
    fn expression_errors() {
        let cases = [
            ("#set($x = )", "unexpected character ')'"),
            ("#set($x = 'abc)", "unterminated string"),
            ("#set($x = \"abc)", "unterminated string"),
            ("#if($a ==)#end", "unexpected character ')'"),
            ("#set($x = foo)", "unexpected 'foo'"),
            ("#set($x = [1, 2)", "expected ',' or ']'"),
            ("#set($x = [1, 2", "unterminated list"),
            ("#set($x = {'a' 1})", "expected ':'"),
            ("#set($x = {'a': 1", "unterminated map"),
            ("#set($x = {'a': 1 'b'})", "expected ',' or '}'"),
            ("#set($x = $)", "malformed reference"),
            ("#set($x = 99999999999999999999)", "out of range"),
            ("$a.b('x'", "unterminated method arguments"),
            ("$a.b('x' 'y')", "expected ',' or ')'"),
            ("${a.b", "unclosed ${"),
            ("${a x}", "unclosed ${"),
            ("#set($x = $a[1)", "expected ']'"),
            ("#if($a = 1)#end", "expected ')'"),
            ("#set($x = \"$a.b(\")", "unexpected end"),
            ("#set($x = 1", "expected ')'"),
            ("#set($x = ", "unexpected end of template"),
        ];
        for (src, want) in cases {
            let e = cerr(src);
            assert!(e.message.contains(want), "{src:?}: {e}");
        }
    }
}
