//! Template parser: text, escapes, comments and directives (`#set`, `#if`, `#foreach`, ...) into nodes.
//! Lines holding only a directive lose their indentation and newline (Velocity's "lines" gobbling).

use memchr::{memchr, memchr2, memchr3, memmem, memrchr};

use super::ast::{Expr, Key, Node, OvKind, Ref, Root, Seg, Target};
use super::CompileError;

/// Maximum nesting of directives and expressions (keeps compile and render recursion bounded).
pub(crate) const MAX_DEPTH: u32 = 64;
/// Maximum `.prop` / `[i]` / `.call()` steps in one reference.
pub(crate) const MAX_SEGS: usize = 64;

pub(crate) struct Parser<'s> {
    pub(crate) src: &'s str,
    /// The whole template, for line/column of errors (`src` may be a string literal's content).
    pub(crate) full: &'s str,
    /// Offset of `src` within `full`.
    pub(crate) base: usize,
    pub(crate) pos: usize,
    pub(crate) depth: u32,
    pub(crate) slots: Vec<Box<str>>,
    /// Inside a double-quoted string: only references and `\$` are special.
    pub(crate) in_string: bool,
}

/// Why a run of nodes ended.
pub(crate) enum Term {
    Eof,
    End,
    Else,
    ElseIf(Expr),
}

enum Dir {
    Literal,
    Raw,
    Comment,
    Node(Node),
    Term(Term, usize),
}

/// Parses a whole template: its nodes and the number of variable slots.
pub(crate) fn template(src: &str) -> Result<(Vec<Node>, usize), CompileError> {
    let mut p = Parser { src, full: src, base: 0, pos: 0, depth: 0, slots: Vec::new(), in_string: false };
    let (nodes, term, at) = p.nodes()?;
    match term {
        Term::Eof => Ok((nodes, p.slots.len())),
        Term::End => Err(p.err(at, "unexpected #end without #if or #foreach")),
        Term::Else => Err(p.err(at, "unexpected #else without #if")),
        Term::ElseIf(_) => Err(p.err(at, "unexpected #elseif without #if")),
    }
}

fn flush(text: &mut String, nodes: &mut Vec<Node>) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text).into_boxed_str()));
    }
}

/// Drops the `n` trailing whitespace bytes of `text`.
fn trim_tail(text: &mut String, n: usize) {
    let keep = text.len().saturating_sub(n);
    if text.is_char_boundary(keep) {
        text.truncate(keep);
    }
}

impl<'s> Parser<'s> {
    pub(crate) fn err(&self, at: usize, msg: impl Into<String>) -> CompileError {
        let mut off = self.base.saturating_add(at).min(self.full.len());
        // Inside a multi-byte character: point at the character itself.
        while !self.full.is_char_boundary(off) {
            off -= 1;
        }
        let (mut line, mut column) = (1u32, 1u32);
        for &c in &self.full.as_bytes()[..off] {
            if c == b'\n' {
                line = line.saturating_add(1);
                column = 1;
            } else if c & 0xC0 != 0x80 {
                column = column.saturating_add(1);
            }
        }
        CompileError { line, column, offset: off, message: msg.into() }
    }

    pub(crate) fn enter(&mut self, at: usize) -> Result<(), CompileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(at, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    /// Skips whitespace inside a directive or expression (newlines included).
    pub(crate) fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(crate) fn expect(&mut self, c: u8, what: &str) -> Result<(), CompileError> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            return Ok(());
        }
        Err(self.err(self.pos, format!("expected '{}' {what}", c as char)))
    }

    /// Consumes `w` when it is a whole word here.
    pub(crate) fn word(&mut self, w: &str) -> bool {
        let b = self.src.as_bytes();
        let end = self.pos + w.len();
        if b.get(self.pos..end) == Some(w.as_bytes()) && !b.get(end).is_some_and(|c| ident_char(*c)) {
            self.pos = end;
            return true;
        }
        false
    }

    /// Consumes the symbol `s` when it is here.
    pub(crate) fn sym(&mut self, s: &str) -> bool {
        if self.src.as_bytes().get(self.pos..self.pos + s.len()) == Some(s.as_bytes()) {
            self.pos += s.len();
            return true;
        }
        false
    }

    pub(crate) fn root(&mut self, name: &str) -> Root {
        match name {
            "input" => Root::Input,
            "context" => Root::Context,
            "stageVariables" => Root::StageVars,
            "util" => Root::Util,
            "foreach" => Root::Foreach,
            "velocityCount" => Root::VelocityCount,
            _ => match self.slots.iter().position(|s| &**s == name) {
                Some(i) => Root::Var(i),
                None => {
                    self.slots.push(name.into());
                    Root::Var(self.slots.len() - 1)
                }
            },
        }
    }

    /// Parses nodes up to the end of input or a block terminator (`#end`, `#else`, `#elseif`).
    pub(crate) fn nodes(&mut self) -> Result<(Vec<Node>, Term, usize), CompileError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        let mut run_start = self.pos;
        loop {
            let b = self.src.as_bytes();
            let rest = &b[self.pos..];
            let hit = if self.in_string { memchr2(b'$', b'\\', rest) } else { memchr3(b'$', b'#', b'\\', rest) };
            let Some(k) = hit else {
                text.push_str(&self.src[self.pos..]);
                self.pos = b.len();
                flush(&mut text, &mut nodes);
                return Ok((nodes, Term::Eof, self.pos));
            };
            let i = self.pos + k;
            text.push_str(&self.src[self.pos..i]);
            self.pos = i;
            match b[i] {
                b'\\' => self.backslashes(&mut text),
                b'$' => match self.reference(false)? {
                    Some(r) => {
                        flush(&mut text, &mut nodes);
                        nodes.push(Node::Ref(r));
                        run_start = self.pos;
                    }
                    None => {
                        text.push('$');
                        self.pos += 1;
                    }
                },
                _ => match self.directive(&mut text, run_start)? {
                    Dir::Literal => {
                        text.push('#');
                        self.pos += 1;
                    }
                    Dir::Raw => {}
                    Dir::Comment => run_start = self.pos,
                    Dir::Node(n) => {
                        flush(&mut text, &mut nodes);
                        nodes.push(n);
                        run_start = self.pos;
                    }
                    Dir::Term(t, at) => {
                        flush(&mut text, &mut nodes);
                        return Ok((nodes, t, at));
                    }
                },
            }
        }
    }

    /// A run of backslashes: before `$`/`#` pairs become one backslash and an odd one escapes the sign.
    fn backslashes(&mut self, text: &mut String) {
        let b = self.src.as_bytes();
        let start = self.pos;
        let mut j = start;
        while b.get(j) == Some(&b'\\') {
            j += 1;
        }
        let n = j - start;
        let special = match b.get(j) {
            Some(b'$') => true,
            Some(b'#') => !self.in_string,
            _ => false,
        };
        if !special {
            text.extend(std::iter::repeat_n('\\', n));
            self.pos = j;
            return;
        }
        text.extend(std::iter::repeat_n('\\', n / 2));
        if n % 2 == 1 {
            text.push(b[j] as char);
            self.pos = j + 1;
        } else {
            self.pos = j;
        }
    }

    /// When the directive at `i` is the first thing on its line: the indentation length to drop.
    fn clean_before(&self, i: usize, run_start: usize) -> Option<usize> {
        if self.in_string {
            return None;
        }
        let b = self.src.as_bytes();
        let ls = memrchr(b'\n', &b[..i]).map_or(0, |k| k + 1);
        if run_start > ls {
            return None;
        }
        b[ls..i].iter().all(|c| *c == b' ' || *c == b'\t').then_some(i - ls)
    }

    /// Eats blanks and one newline right after a directive (Velocity 1.7); when the directive is
    /// alone on its line (`clean`), its indentation goes too (Velocity 2 "lines" gobbling).
    /// Comments (`always == false`) only gobble when alone on their line.
    fn gobble(&mut self, text: &mut String, clean: Option<usize>, always: bool) {
        if clean.is_none() && !always {
            return;
        }
        let b = self.src.as_bytes();
        let mut j = self.pos;
        while matches!(b.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        let end = match b.get(j) {
            None if clean.is_some() => j,
            Some(b'\n') => j + 1,
            Some(b'\r') if b.get(j + 1) == Some(&b'\n') => j + 2,
            _ => return,
        };
        self.pos = end;
        if let Some(n) = clean {
            trim_tail(text, n);
        }
    }

    fn directive(&mut self, text: &mut String, run_start: usize) -> Result<Dir, CompileError> {
        let b = self.src.as_bytes();
        let i = self.pos;
        match b.get(i + 1) {
            Some(b'#') => {
                if let Some(n) = self.clean_before(i, run_start) {
                    trim_tail(text, n);
                }
                self.pos = memchr(b'\n', &b[i..]).map_or(b.len(), |k| i + k + 1);
                return Ok(Dir::Comment);
            }
            Some(b'*') => {
                let Some(k) = memmem::find(&b[i + 2..], b"*#") else {
                    return Err(self.err(i, "unterminated #* comment (missing *#)"));
                };
                let clean = self.clean_before(i, run_start);
                self.pos = i + 2 + k + 2;
                self.gobble(text, clean, false);
                return Ok(Dir::Comment);
            }
            Some(b'[') if b.get(i + 2) == Some(&b'[') => {
                let Some(k) = memmem::find(&b[i + 3..], b"]]#") else {
                    return Err(self.err(i, "unterminated #[[ block (missing ]]#)"));
                };
                text.push_str(&self.src[i + 3..i + 3 + k]);
                self.pos = i + 3 + k + 3;
                return Ok(Dir::Raw);
            }
            _ => {}
        }
        let formal = b.get(i + 1) == Some(&b'{');
        let name_start = i + 1 + usize::from(formal);
        let mut j = name_start;
        while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            j += 1;
        }
        let name = &self.src[name_start..j];
        if formal {
            if b.get(j) != Some(&b'}') {
                return Ok(Dir::Literal);
            }
            j += 1;
        }
        match name {
            "set" | "if" | "elseif" | "else" | "end" | "foreach" | "break" | "stop" => {}
            "macro" | "parse" | "include" | "evaluate" | "define" => {
                return Err(self.err(i, format!("#{name} is not supported")));
            }
            _ => return Ok(Dir::Literal),
        }
        let clean = self.clean_before(i, run_start);
        self.pos = j;
        let dir = match name {
            "end" => Dir::Term(Term::End, i),
            "else" => Dir::Term(Term::Else, i),
            "break" => Dir::Node(Node::Break),
            "stop" => Dir::Node(Node::Stop),
            "elseif" => Dir::Term(Term::ElseIf(self.cond("#elseif")?), i),
            "set" => Dir::Node(self.set()?),
            "if" => {
                let c = self.cond("#if")?;
                self.gobble(text, clean, true);
                return self.if_rest(i, c);
            }
            _ => {
                let (var, iter) = self.foreach_head()?;
                self.gobble(text, clean, true);
                return self.foreach_rest(i, var, iter);
            }
        };
        self.gobble(text, clean, true);
        Ok(dir)
    }

    /// `(` after a directive name; blanks may come between.
    fn open(&mut self, what: &str) -> Result<(), CompileError> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        if self.peek() != Some(b'(') {
            return Err(self.err(self.pos, format!("{what} requires '('")));
        }
        self.pos += 1;
        Ok(())
    }

    fn cond(&mut self, what: &str) -> Result<Expr, CompileError> {
        self.open(what)?;
        let e = self.expr()?;
        self.expect(b')', &format!("to close {what}"))?;
        Ok(e)
    }

    fn set(&mut self) -> Result<Node, CompileError> {
        self.open("#set")?;
        self.ws();
        let at = self.pos;
        if self.peek() != Some(b'$') {
            return Err(self.err(at, "expected $reference on the left of #set"));
        }
        let Some(r) = self.reference(true)? else {
            return Err(self.err(at, "expected $reference on the left of #set"));
        };
        self.ws();
        if self.peek() != Some(b'=') {
            return Err(self.err(self.pos, "expected '=' in #set"));
        }
        self.pos += 1;
        let value = self.expr()?;
        self.expect(b')', "to close #set")?;
        Ok(Node::Set(self.target(r, at)?, value))
    }

    fn target(&self, r: Ref, at: usize) -> Result<Target, CompileError> {
        if r.segs.iter().any(|s| matches!(s, Seg::Call(..))) {
            return Err(self.err(at, "cannot #set a method call"));
        }
        match r.root {
            Root::Var(s) => Ok(Target::Var(s, r.segs)),
            Root::Context => {
                let bad = || {
                    self.err(
                        at,
                        "only $context.requestOverride.{header,querystring,path}.NAME and \
                         $context.responseOverride.{status,header.NAME} can be set",
                    )
                };
                let mut it = r.segs.into_iter();
                let (Some(Seg::Prop(o)), Some(Seg::Prop(sect))) = (it.next(), it.next()) else { return Err(bad()) };
                let key = match (it.next(), it.next()) {
                    (None, None) if &*o == "responseOverride" && &*sect == "status" => return Ok(Target::Status),
                    (Some(Seg::Prop(n)), None) => Key::Name(n),
                    (Some(Seg::Index(e)), None) => Key::Expr(e),
                    _ => return Err(bad()),
                };
                let kind = match (&*o, &*sect) {
                    ("requestOverride", "header") => OvKind::ReqHeader,
                    ("requestOverride", "querystring") => OvKind::ReqQuery,
                    ("requestOverride", "path") => OvKind::ReqPath,
                    ("responseOverride", "header") => OvKind::RespHeader,
                    _ => return Err(bad()),
                };
                Ok(Target::Override(kind, key))
            }
            _ => Err(self.err(at, format!("cannot #set {}", r.src))),
        }
    }

    fn if_rest(&mut self, i: usize, cond: Expr) -> Result<Dir, CompileError> {
        self.enter(i)?;
        let mut arms = Vec::new();
        let mut cur = cond;
        loop {
            let (body, term, _) = self.nodes()?;
            arms.push((cur, body));
            match term {
                Term::End => break,
                Term::ElseIf(c) => cur = c,
                Term::Else => {
                    let (els, t2, at2) = self.nodes()?;
                    return match t2 {
                        Term::End => {
                            self.leave();
                            Ok(Dir::Node(Node::If(arms, els)))
                        }
                        Term::Eof => Err(self.err(i, "unterminated #if: missing #end")),
                        Term::Else => Err(self.err(at2, "#else after #else")),
                        Term::ElseIf(_) => Err(self.err(at2, "#elseif after #else")),
                    };
                }
                Term::Eof => return Err(self.err(i, "unterminated #if: missing #end")),
            }
        }
        self.leave();
        Ok(Dir::Node(Node::If(arms, Vec::new())))
    }

    fn foreach_head(&mut self) -> Result<(usize, Expr), CompileError> {
        self.open("#foreach")?;
        self.ws();
        let at = self.pos;
        let b = self.src.as_bytes();
        if self.peek() != Some(b'$') || !b.get(at + 1).is_some_and(|c| ident_start(*c)) {
            return Err(self.err(at, "expected $variable in #foreach"));
        }
        let mut e = at + 1;
        while b.get(e).is_some_and(|c| ident_char(*c)) {
            e += 1;
        }
        let Root::Var(var) = self.root(&self.src[at + 1..e]) else {
            return Err(self.err(at, format!("cannot use {} as the #foreach variable", &self.src[at..e])));
        };
        self.pos = e;
        self.ws();
        if !self.word("in") {
            return Err(self.err(self.pos, "#foreach requires 'in'"));
        }
        let iter = self.expr()?;
        self.expect(b')', "to close #foreach")?;
        Ok((var, iter))
    }

    fn foreach_rest(&mut self, i: usize, var: usize, iter: Expr) -> Result<Dir, CompileError> {
        self.enter(i)?;
        let (body, term, at) = self.nodes()?;
        match term {
            Term::End => {
                self.leave();
                Ok(Dir::Node(Node::Foreach { var, iter, body }))
            }
            Term::Eof => Err(self.err(i, "unterminated #foreach: missing #end")),
            Term::Else | Term::ElseIf(_) => Err(self.err(at, "#else inside #foreach")),
        }
    }
}

pub(crate) fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

pub(crate) fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{cerr, r};

    #[test]
    fn text_verbatim() {
        assert_eq!(r("plain {\"a\": [1]} 100% é"), "plain {\"a\": [1]} 100% é");
        assert_eq!(r(""), "");
    }

    #[test]
    fn comments() {
        assert_eq!(r("a ## note\nb"), "a b");
        assert_eq!(r("a\n  ## whole line\nb"), "a\nb");
        assert_eq!(r("a #* block\n $x #if( *# b"), "a  b");
        assert_eq!(r("a\n  #* alone *#\nb"), "a\nb");
        assert_eq!(r("x##"), "x");
    }

    #[test]
    fn raw_block() {
        assert_eq!(r("#[[ $not #if( ]]#!"), " $not #if( !");
    }

    #[test]
    fn escapes() {
        assert_eq!(r("#set($x = 'v')\\$x \\\\$x \\\\\\$x \\#if \\n"), "$x \\v \\$x #if \\n");
        assert_eq!(r("cost: $ 5, $. $!"), "cost: $ 5, $. $!");
    }

    #[test]
    fn unknown_directives_are_text() {
        assert_eq!(r("#sett(x) #hashtag #1 #{nope} #endif #{end"), "#sett(x) #hashtag #1 #{nope} #endif #{end");
    }

    #[test]
    fn formal_directives() {
        assert_eq!(r("#{if}(true)a#{else}b#{end}"), "a");
        assert_eq!(r("#{set}($x = 1)$x"), "1");
    }

    #[test]
    fn gobbling_lines() {
        assert_eq!(r("{\n  #set($a = 1)\n  \"a\": $a\n}"), "{\n  \"a\": 1\n}");
        assert_eq!(r("x\n  #if(true)\n  y\n  #end\nz"), "x\n  y\nz");
        assert_eq!(r("x\r\n#if(true)\r\ny\r\n#end\r\n"), "x\r\ny\r\n");
        assert_eq!(r("a #if(true)b#end\nc"), "a bc");
        assert_eq!(r("#set($a = 1) \t\nx"), "x");
        assert_eq!(r("#if(true) keep #end"), " keep ");
    }

    #[test]
    fn compile_errors() {
        let cases = [
            ("#if(true) x", "unterminated #if"),
            ("#if(true) #else x", "unterminated #if"),
            ("#foreach($a in [1]) x", "unterminated #foreach"),
            ("x #end", "unexpected #end"),
            ("#else", "unexpected #else"),
            ("#elseif(true)", "unexpected #elseif"),
            ("#if(1)#else#else#end", "#else after #else"),
            ("#if(1)#else#elseif(2)#end", "#elseif after #else"),
            ("#foreach($a in [1])#else#end", "#else inside #foreach"),
            ("#set $x = 1", "#set requires '('"),
            ("#if true", "#if requires '('"),
            ("#set(x = 1)", "expected $reference"),
            ("#set($x 1)", "expected '='"),
            ("#set($x = 1", "expected ')'"),
            ("#set($x.size() = 1)", "method call"),
            ("#set($input.body = 1)", "cannot #set $input.body"),
            ("#set($context.stage = 1)", "only $context.requestOverride"),
            ("#set($context.requestOverride.header = 1)", "only $context.requestOverride"),
            ("#set($context.requestOverride.cookie.a = 1)", "only $context.requestOverride"),
            ("#foreach($a [1])#end", "requires 'in'"),
            ("#foreach(a in [1])#end", "expected $variable"),
            ("#foreach($input in [1])#end", "cannot use $input"),
            ("#macro(m)#end", "#macro is not supported"),
            ("#parse('x')", "#parse is not supported"),
            ("#include('x')", "#include is not supported"),
            ("#evaluate('x')", "#evaluate is not supported"),
            ("#{define}($x)#end", "#define is not supported"),
            ("a #* open", "unterminated #* comment"),
            ("#[[ open", "unterminated #[["),
        ];
        for (src, want) in cases {
            let e = cerr(src);
            assert!(e.message.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn error_positions() {
        let e = cerr("line1\nline2 #end");
        assert_eq!((e.line, e.column, e.offset), (2, 7, 12));
        let e = cerr("#if(true)\n\n#foreach($x in [1])");
        assert_eq!((e.line, e.column), (3, 1));
    }
}
