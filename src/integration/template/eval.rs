//! The renderer: walks the compiled nodes, evaluates expressions and references, and counts
//! every step and output byte against the `Limits`.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;

use serde_json::Value;

use super::ast::{BinOp, Expr, Key, Node, OvKind, Ref, Root, Seg, Target};
use super::value::{self, compare, loose_eq, own, Str, Val, MAX_VALUE_DEPTH};
use super::{input, methods, util, Limits, Overrides, RenderError, Scope};

pub(crate) type R<T> = Result<T, RenderError>;

/// Most iterations of one `#foreach` (API Gateway's limit).
pub(crate) const MAX_FOREACH: usize = 1000;
/// Longest range literal `[a..b]`.
const MAX_RANGE: i128 = 100_000;

pub(crate) fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(RenderError { message: msg.into() })
}

pub(crate) enum Flow {
    Normal,
    Break,
    Stop,
}

pub(crate) struct Ctx<'a> {
    pub scope: &'a Scope<'a>,
    body: &'a OnceCell<Option<Value>>,
    pub limits: &'a Limits,
    slots: Vec<Val<'a>>,
    /// `(index, len)` of the enclosing `#foreach` loops, innermost last.
    loops: Vec<(usize, usize)>,
    steps: u64,
    pub out: Vec<u8>,
    /// `out` may not grow past this length.
    out_limit: usize,
    pub ov: Overrides,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        scope: &'a Scope<'a>,
        body: &'a OnceCell<Option<Value>>,
        limits: &'a Limits,
        slots: usize,
        out: Vec<u8>,
        ov: Overrides,
    ) -> Self {
        let out_limit = out.len().saturating_add(limits.max_output);
        Ctx { scope, body, limits, slots: vec![Val::Null; slots], loops: Vec::new(), steps: 0, out, out_limit, ov }
    }

    pub(crate) fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return fail(format!("template exceeds {} evaluation steps", self.limits.max_steps));
        }
        Ok(())
    }

    /// Accounts for building a string of `len` bytes: bounded by `max_output`, one step per 256 bytes.
    pub(crate) fn charge(&mut self, len: usize) -> R<()> {
        if len > self.limits.max_output {
            return fail(format!("string longer than {} bytes", self.limits.max_output));
        }
        self.steps = self.steps.saturating_add((len / 256) as u64);
        self.step()
    }

    /// A new owned string value, charged.
    pub(crate) fn owned(&mut self, s: String) -> R<Val<'a>> {
        self.charge(s.len())?;
        Ok(Val::string(s))
    }

    pub(crate) fn text<'v>(&self, v: &'v Val<'a>) -> R<Cow<'v, str>> {
        match value::text(v, self.limits.max_output) {
            Some(t) => Ok(t),
            None => fail(format!("value longer than {} bytes", self.limits.max_output)),
        }
    }

    pub(crate) fn list(&mut self, items: Vec<Val<'a>>) -> R<Val<'a>> {
        self.steps = self.steps.saturating_add(items.len() as u64 / 16);
        self.step()?;
        Val::list(items).map_or_else(|| fail("value nested too deeply"), Ok)
    }

    pub(crate) fn map(&mut self, entries: Vec<(Str<'a>, Val<'a>)>) -> R<Val<'a>> {
        self.steps = self.steps.saturating_add(entries.len() as u64 / 16);
        self.step()?;
        Val::map(entries).map_or_else(|| fail("value nested too deeply"), Ok)
    }

    /// The request body parsed as JSON once per render (empty body = `{}`); `None` when not JSON.
    pub(crate) fn body_json(&self) -> Option<&'a Value> {
        let cell: &'a OnceCell<Option<Value>> = self.body;
        let body = self.scope.body;
        cell.get_or_init(|| {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Some(Value::Object(serde_json::Map::new()));
            }
            serde_json::from_slice(body).ok()
        })
        .as_ref()
    }

    fn write(&mut self, b: &[u8]) -> R<()> {
        if self.out.len().saturating_add(b.len()) > self.out_limit {
            return fail(format!("output exceeds {} bytes", self.limits.max_output));
        }
        self.out.extend_from_slice(b);
        Ok(())
    }

    pub(crate) fn block(&mut self, nodes: &'a [Node]) -> R<Flow> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.write(t.as_bytes())?,
                Node::Ref(r) => {
                    let v = self.eval_ref(r)?;
                    self.emit(r, &v)?;
                }
                Node::Set(t, e) => self.set(t, e)?,
                Node::If(arms, els) => {
                    let mut chosen: &'a [Node] = els;
                    for (c, body) in arms {
                        if self.eval(c)?.truthy() {
                            chosen = body;
                            break;
                        }
                    }
                    match self.block(chosen)? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::Foreach { var, iter, body } => {
                    if let Flow::Stop = self.foreach(*var, iter, body)? {
                        return Ok(Flow::Stop);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Stop => return Ok(Flow::Stop),
            }
        }
        Ok(Flow::Normal)
    }

    /// Output of a reference: its value, or its own source text when null (nothing when quiet).
    fn emit(&mut self, r: &Ref, v: &Val<'a>) -> R<()> {
        if matches!(v, Val::Null | Val::Input | Val::Util | Val::Loop { .. }) {
            return if r.quiet { Ok(()) } else { self.write(r.src.as_bytes()) };
        }
        if !value::write_text(v, &mut self.out, self.out_limit) {
            return fail(format!("output exceeds {} bytes", self.limits.max_output));
        }
        Ok(())
    }

    fn foreach(&mut self, var: usize, iter: &'a Expr, body: &'a [Node]) -> R<Flow> {
        let coll = self.eval(iter)?;
        if coll.len().is_some_and(|n| n > MAX_FOREACH) {
            return fail(format!("foreach exceeds {MAX_FOREACH} iterations"));
        }
        let items = coll.items().unwrap_or_default();
        let saved = std::mem::replace(&mut self.slots[var], Val::Null);
        self.loops.push((0, items.len()));
        let mut flow = Flow::Normal;
        for (i, item) in items.into_iter().enumerate() {
            self.step()?;
            self.slots[var] = item;
            if let Some(l) = self.loops.last_mut() {
                l.0 = i;
            }
            match self.block(body)? {
                Flow::Normal => {}
                Flow::Break => break,
                Flow::Stop => {
                    flow = Flow::Stop;
                    break;
                }
            }
        }
        self.loops.pop();
        self.slots[var] = saved;
        Ok(flow)
    }

    fn set(&mut self, t: &'a Target, e: &'a Expr) -> R<()> {
        let v = self.eval(e)?;
        match t {
            Target::Var(s, segs) if segs.is_empty() => self.slots[*s] = v,
            Target::Var(s, segs) => {
                let mut keys = self.keys(segs)?;
                let Some(last) = keys.pop() else { return Ok(()) };
                let mut op = |c: &mut Val<'a>| assign(c, &last, v.clone());
                mutate(&mut self.slots[*s], &keys, &mut op)?;
            }
            Target::Override(kind, key) => {
                let name = match key {
                    Key::Name(n) => n.to_string(),
                    Key::Expr(x) => {
                        let k = self.eval(x)?;
                        self.text(&k)?.into_owned()
                    }
                };
                if matches!(v, Val::Null) {
                    return Ok(());
                }
                let value = self.text(&v)?.into_owned();
                let (list, what, fold) = match kind {
                    OvKind::ReqHeader => (&mut self.ov.request_header, "requestOverride.header", true),
                    OvKind::ReqQuery => (&mut self.ov.request_querystring, "requestOverride.querystring", false),
                    OvKind::ReqPath => (&mut self.ov.request_path, "requestOverride.path", false),
                    OvKind::RespHeader => (&mut self.ov.response_header, "responseOverride.header", true),
                };
                let same = |k: &String| if fold { k.eq_ignore_ascii_case(&name) } else { *k == name };
                if list.iter().any(|(k, _)| same(k)) {
                    return fail(format!("$context.{what}.{name} is overridden more than once"));
                }
                list.push((name, value));
            }
            Target::Status => {
                let code = match &v {
                    Val::Int(i) => Some(*i),
                    Val::Str(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                if let Some(c @ 100..=599) = code {
                    if self.ov.status.is_some() {
                        return fail("$context.responseOverride.status is overridden more than once");
                    }
                    self.ov.status = u16::try_from(c).ok();
                }
            }
        }
        Ok(())
    }

    /// The keys of `.prop` / `[expr]` steps (calls never reach here).
    fn keys(&mut self, segs: &'a [Seg]) -> R<Vec<Val<'a>>> {
        let mut keys = Vec::with_capacity(segs.len());
        for s in segs {
            keys.push(match s {
                Seg::Prop(p) => Val::Str(Str::B(p)),
                Seg::Index(e) => self.eval(e)?,
                Seg::Call(..) => Val::Null,
            });
        }
        Ok(keys)
    }

    pub(crate) fn eval(&mut self, e: &'a Expr) -> R<Val<'a>> {
        self.step()?;
        Ok(match e {
            Expr::Null => Val::Null,
            Expr::Bool(b) => Val::Bool(*b),
            Expr::Int(i) => Val::Int(*i),
            Expr::Float(f) => Val::Float(*f),
            Expr::Str(s) => Val::Str(Str::B(s)),
            Expr::Interp(nodes) => {
                let outer = std::mem::take(&mut self.out);
                let outer_limit = std::mem::replace(&mut self.out_limit, self.limits.max_output);
                let r = self.block(nodes);
                let buf = std::mem::replace(&mut self.out, outer);
                self.out_limit = outer_limit;
                r?;
                let s = String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                self.owned(s)?
            }
            Expr::Ref(r) => self.eval_ref(r)?,
            Expr::List(items) => {
                let mut v = Vec::with_capacity(items.len());
                for x in items {
                    v.push(self.eval(x)?);
                }
                self.list(v)?
            }
            Expr::Map(pairs) => {
                let mut m = value::Map::default();
                for (k, x) in pairs {
                    let k = self.eval(k)?;
                    let k = match k {
                        Val::Str(s) => s,
                        other => Str::O(self.text(&other)?.into()),
                    };
                    let x = self.eval(x)?;
                    m.put(k, x);
                }
                self.map(m.entries)?
            }
            Expr::Range(lo, hi) => {
                let (lo, hi) = (self.eval(lo)?, self.eval(hi)?);
                let (Val::Int(lo), Val::Int(hi)) = (lo, hi) else { return fail("range bounds must be integers") };
                if (i128::from(hi) - i128::from(lo)).abs() >= MAX_RANGE {
                    return fail(format!("range [{lo}..{hi}] has more than {MAX_RANGE} items"));
                }
                let items: Vec<Val<'a>> =
                    if lo <= hi { (lo..=hi).map(Val::Int).collect() } else { (hi..=lo).rev().map(Val::Int).collect() };
                self.list(items)?
            }
            Expr::Not(x) => Val::Bool(!self.eval(x)?.truthy()),
            Expr::Neg(x) => match self.eval(x)? {
                Val::Int(i) => i.checked_neg().map_or(Val::Float(-(i as f64)), Val::Int),
                Val::Float(f) => Val::Float(-f),
                _ => Val::Null,
            },
            Expr::Bin(BinOp::And, l, r) => Val::Bool(self.eval(l)?.truthy() && self.eval(r)?.truthy()),
            Expr::Bin(BinOp::Or, l, r) => Val::Bool(self.eval(l)?.truthy() || self.eval(r)?.truthy()),
            Expr::Bin(op, l, r) => {
                let (l, r) = (self.eval(l)?, self.eval(r)?);
                self.binary(*op, l, r)?
            }
        })
    }

    fn binary(&mut self, op: BinOp, l: Val<'a>, r: Val<'a>) -> R<Val<'a>> {
        let ord = |f: fn(std::cmp::Ordering) -> bool| Val::Bool(compare(&l, &r).is_some_and(f));
        Ok(match op {
            BinOp::Eq => Val::Bool(loose_eq(&l, &r)),
            BinOp::Ne => Val::Bool(!loose_eq(&l, &r)),
            BinOp::Lt => ord(|o| o.is_lt()),
            BinOp::Gt => ord(|o| o.is_gt()),
            BinOp::Le => ord(|o| o.is_le()),
            BinOp::Ge => ord(|o| o.is_ge()),
            _ if matches!(l, Val::Null) || matches!(r, Val::Null) => Val::Null,
            BinOp::Add if matches!(l, Val::Str(_)) || matches!(r, Val::Str(_)) => {
                let (a, b) = (self.text(&l)?, self.text(&r)?);
                self.charge(a.len().saturating_add(b.len()))?;
                let s = format!("{a}{b}");
                Val::string(s)
            }
            _ => arith(op, &l, &r)?,
        })
    }

    pub(crate) fn eval_ref(&mut self, r: &'a Ref) -> R<Val<'a>> {
        let mut segs: &'a [Seg] = &r.segs;
        let mut v = match r.root {
            Root::Var(s) => {
                if let Some((Seg::Call(name, args), prefix)) = r.segs.split_last() {
                    if matches!(&**name, "put" | "add") && !prefix.iter().any(|p| matches!(p, Seg::Call(..))) {
                        return self.mutate_call(s, prefix, name, args);
                    }
                }
                self.slots[s].clone()
            }
            Root::Input => Val::Input,
            Root::Util => Val::Util,
            Root::StageVars => Val::from_json(self.scope.stage_variables),
            Root::Context => match segs.first() {
                Some(Seg::Prop(p)) if &**p == "requestOverride" || &**p == "responseOverride" => {
                    segs = &segs[1..];
                    self.override_view(&**p == "requestOverride")?
                }
                _ => Val::from_json(self.scope.context),
            },
            Root::Foreach => self.loops.last().map_or(Val::Null, |&(index, len)| Val::Loop { index, len }),
            Root::VelocityCount => self.loops.last().map_or(Val::Null, |&(i, _)| Val::Int(i as i64 + 1)),
        };
        for seg in segs {
            self.step()?;
            v = match seg {
                Seg::Prop(p) => match v {
                    Val::Input => input::prop(self, p),
                    _ => v.get_key(p),
                },
                Seg::Index(e) => {
                    let k = self.eval(e)?;
                    v.index(&k)
                }
                Seg::Call(name, args) => {
                    let mut a = Vec::with_capacity(args.len());
                    for x in args {
                        a.push(self.eval(x)?);
                    }
                    match v {
                        Val::Input => input::call(self, name, &a)?,
                        Val::Util => util::call(self, name, &a)?,
                        Val::Null => Val::Null,
                        _ => methods::call(self, v, name, &a)?,
                    }
                }
            };
        }
        Ok(v)
    }

    /// `$context.requestOverride` / `.responseOverride` as maps of what was set so far.
    fn override_view(&mut self, request: bool) -> R<Val<'a>> {
        fn kv<'a>(pairs: &[(String, String)]) -> Val<'a> {
            let entries = pairs.iter().map(|(k, v)| (Str::O(k.as_str().into()), Val::string(v.clone()))).collect();
            Val::Map(Rc::new(value::Map { depth: 1, entries }))
        }
        let mut m = Vec::new();
        if request {
            m.push((Str::B("header"), kv(&self.ov.request_header)));
            m.push((Str::B("querystring"), kv(&self.ov.request_querystring)));
            m.push((Str::B("path"), kv(&self.ov.request_path)));
        } else {
            if let Some(s) = self.ov.status {
                m.push((Str::B("status"), Val::Int(i64::from(s))));
            }
            m.push((Str::B("header"), kv(&self.ov.response_header)));
        }
        self.map(m)
    }

    /// `$var.path.put(k, v)` / `.add(v)`: changes the variable in place.
    fn mutate_call(&mut self, slot: usize, prefix: &'a [Seg], name: &str, args: &'a [Expr]) -> R<Val<'a>> {
        let keys = self.keys(prefix)?;
        let mut a = Vec::with_capacity(args.len());
        for x in args {
            a.push(self.eval(x)?);
        }
        let mut op = |c: &mut Val<'a>| -> R<Val<'a>> {
            own(c);
            match (name, c, a.as_slice()) {
                (_, Val::Null, _) => Ok(Val::Null),
                ("put", Val::Map(m), [k, v]) => {
                    let k = match k {
                        Val::Str(s) => s.clone(),
                        other => Str::O(value::text(other, 4096).unwrap_or_default().into()),
                    };
                    Ok(Rc::make_mut(m).put(k, v.clone()).unwrap_or(Val::Null))
                }
                ("add", Val::List(l), [v]) => {
                    let l = Rc::make_mut(l);
                    l.depth = l.depth.max(v.depth() + 1);
                    l.items.push(v.clone());
                    Ok(Val::Bool(true))
                }
                ("put", Val::Map(_), _) => fail("put() expects 2 arguments"),
                ("add", Val::List(_), _) => fail("add() expects 1 argument"),
                (_, c, _) => fail(format!("unknown method '{name}' on {}", c.type_name())),
            }
        };
        mutate(&mut self.slots[slot], &keys, &mut op)
    }
}

/// Follows `keys` into `cur` (copying shared or borrowed containers on the way) and applies `op`
/// to what is there; a missing step does nothing. Keeps the depth bounds up to date.
fn mutate<'a>(cur: &mut Val<'a>, keys: &[Val<'a>], op: &mut dyn FnMut(&mut Val<'a>) -> R<Val<'a>>) -> R<Val<'a>> {
    let r = match keys.split_first() {
        None => op(cur)?,
        Some((k, rest)) => {
            own(cur);
            match cur {
                Val::Map(m) => {
                    let kt = value::text(k, 4096).unwrap_or_default();
                    let m = Rc::make_mut(m);
                    let mut d = 0;
                    let r = match m.entries.iter_mut().find(|(key, _)| **key == *kt) {
                        Some((_, child)) => {
                            let r = mutate(child, rest, op)?;
                            d = child.depth() + 1;
                            r
                        }
                        None => Val::Null,
                    };
                    m.depth = m.depth.max(d);
                    r
                }
                Val::List(l) => {
                    let Val::Int(i) = k else { return Ok(Val::Null) };
                    let l = Rc::make_mut(l);
                    let Some(child) = usize::try_from(*i).ok().and_then(|i| l.items.get_mut(i)) else {
                        return Ok(Val::Null);
                    };
                    let r = mutate(child, rest, op)?;
                    let d = child.depth() + 1;
                    l.depth = l.depth.max(d);
                    r
                }
                _ => Val::Null,
            }
        }
    };
    if cur.depth() > MAX_VALUE_DEPTH {
        return fail("value nested too deeply");
    }
    Ok(r)
}

/// `#set($m.k = v)` / `#set($l[i] = v)` at the container `c`.
fn assign<'a>(c: &mut Val<'a>, key: &Val<'a>, v: Val<'a>) -> R<Val<'a>> {
    own(c);
    match c {
        Val::Map(m) => {
            let k = match key {
                Val::Str(s) => s.clone(),
                other => Str::O(value::text(other, 4096).unwrap_or_default().into()),
            };
            Rc::make_mut(m).put(k, v);
        }
        Val::List(l) => {
            if let Val::Int(i) = key {
                let l = Rc::make_mut(l);
                let d = v.depth() + 1;
                if let Some(slot) = usize::try_from(*i).ok().and_then(|i| l.items.get_mut(i)) {
                    *slot = v;
                    l.depth = l.depth.max(d);
                }
            }
        }
        _ => {}
    }
    Ok(Val::Null)
}

/// `+ - * / %` on numbers: integer arithmetic when both are integers (overflow falls back to
/// floating point), division by zero is an error; non-numbers give null.
fn arith<'a>(op: BinOp, l: &Val<'a>, r: &Val<'a>) -> R<Val<'a>> {
    if let (Val::Int(a), Val::Int(b)) = (l, r) {
        let (a, b) = (*a, *b);
        if matches!(op, BinOp::Div | BinOp::Mod) && b == 0 {
            return fail("division by zero");
        }
        let v = match op {
            BinOp::Add => a.checked_add(b),
            BinOp::Sub => a.checked_sub(b),
            BinOp::Mul => a.checked_mul(b),
            BinOp::Div => a.checked_div(b),
            _ => a.checked_rem(b),
        };
        if let Some(v) = v {
            return Ok(Val::Int(v));
        }
    }
    let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else { return Ok(Val::Null) };
    if matches!(op, BinOp::Div | BinOp::Mod) && b == 0.0 {
        return fail("division by zero");
    }
    Ok(Val::Float(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        _ => a % b,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{r, rerr};

    #[test]
    fn set_and_reassign() {
        assert_eq!(r("#set($a = 1)#set($a = $a + 1)$a"), "2");
        assert_eq!(r("#set($a = 1)#set($a = $nothing)$a"), "$a");
        assert_eq!(r("#set($m = {'a': {'b': 1}})#set($m.a.b = 2)#set($m['c'] = 3)$m"), r#"{"a":{"b":2},"c":3}"#);
        assert_eq!(r("#set($l = [1, 2])#set($l[0] = 9)#set($l[5] = 9)$l"), "[9,2]");
        assert_eq!(r("#set($u.x = 1)$!u|"), "|");
    }

    #[test]
    fn set_into_request_json_copies() {
        let src = "#set($root = $input.path('$'))#set($root.s = 'changed')$root.s $input.path('$.s')";
        assert_eq!(r(src), "changed hi");
    }

    #[test]
    fn put_and_add_mutate_variables() {
        let src = "#set($m = {})#set($x = $m.put('a', 1))$m.put('b', 2)#set($l = [])$l.add($m.a)$m $l";
        // put() returns the previous value: null here, so the reference prints as written.
        assert_eq!(r(src), r#"$m.put('b', 2)true{"a":1,"b":2} [1]"#);
        assert_eq!(r("#set($m = {'k': {}})#set($d = $m.k.put('x', 1))$m"), r#"{"k":{"x":1}}"#);
        assert_eq!(r("#set($m = {'a': 1})$m.put('a', 2)"), "1");
        assert!(rerr("#set($s = 'x')$s.put('a', 1)").contains("unknown method 'put' on string"));
        assert!(rerr("#set($m = {})$m.put('a')").contains("expects 2"));
        assert!(rerr("#set($l = [])$l.add()").contains("expects 1"));
    }

    #[test]
    fn if_elseif_else() {
        let t = "#if($v == 1)one#elseif($v == 2)two#elseif($v)other#{else}none#end";
        assert_eq!(r(&format!("#set($v = 1){t}")), "one");
        assert_eq!(r(&format!("#set($v = 2){t}")), "two");
        assert_eq!(r(&format!("#set($v = 'x'){t}")), "other");
        assert_eq!(r(t), "none");
    }

    #[test]
    fn truthiness() {
        assert_eq!(r("#if('')e#end#if(0)z#end#if([])l#end#if($nope)n#end#if(false)f#end#if(null)u#end"), "ezl");
    }

    #[test]
    fn foreach_lists_maps_ranges() {
        assert_eq!(r("#foreach($i in [1..3])$i#end #foreach($i in [3..1])$i#end"), "123 321");
        assert_eq!(r("#foreach($v in {'a': 1, 'b': 2})$v#end"), "12");
        assert_eq!(r("#foreach($k in $input.path('$.nested.a').keySet())$k#end"), "b");
        assert_eq!(r("#foreach($i in $input.path('$.items'))$i.name,#end"), "Rex,O'Malley \"the cat\",");
        assert_eq!(r("#foreach($i in $nope)x#end#foreach($i in 'str')x#end|"), "|");
        assert_eq!(r("#set($n = 2)#foreach($i in [1..$n])$i#end"), "12");
    }

    #[test]
    fn foreach_meta() {
        let src = "#foreach($i in ['a','b','c'])$foreach.index$foreach.count$velocityCount$foreach.first$foreach.last$foreach.hasNext() #end";
        assert_eq!(r(src), "011truefalsetrue 122falsefalsetrue 233falsetruefalse ");
        assert_eq!(
            r("#foreach($i in [1,2])#foreach($j in [1,2,3])$foreach.count#end$foreach.count;#end"),
            "1231;1232;"
        );
        assert_eq!(r("$foreach.index $velocityCount"), "$foreach.index $velocityCount");
    }

    #[test]
    fn foreach_restores_variable() {
        assert_eq!(r("#set($i = 'x')#foreach($i in [1,2])$i#end$i"), "12x");
    }

    #[test]
    fn break_and_stop() {
        assert_eq!(r("#foreach($i in [1..5])#if($i == 3)#break#end$i#end!"), "12!");
        assert_eq!(r("#foreach($i in [1,2])#foreach($j in [1,2])#break#end$i#end"), "12");
        assert_eq!(r("a#foreach($i in [1..5])$i#if($i == 2)#stop#end#end b"), "a12");
        assert_eq!(r("a#stop b"), "a");
        assert_eq!(r("a#if(true)#break#end b"), "a");
    }

    #[test]
    fn foreach_limit() {
        assert_eq!(r("#foreach($i in [1..1000])#end ok"), " ok");
        assert!(rerr("#foreach($i in [1..1001])#end").contains("foreach exceeds 1000 iterations"));
        assert_eq!(r("#set($l = [1..2000])$l.size()"), "2000");
        assert!(rerr("#set($l = [1..200000])").contains("more than 100000"));
        assert!(rerr("#set($l = ['a'..2])").contains("must be integers"));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(
            r("#set($x = 7 / 2)$x #set($y = 7.0 / 2)$y #set($z = -7 % 3)$z #set($w = 2 * 1.5)$w"),
            "3 3.5 -1 3.0"
        );
        assert_eq!(r("#set($x = 9223372036854775807 + 1)$x"), "9.223372036854776e+18");
        assert_eq!(r("#set($x = 'a' + 1 + 2)$x #set($y = 1 + 2 + 'a')$y"), "a12 3a");
        assert_eq!(r("#set($x = $nope + 1)$!x|#set($y = [1] * 2)$!y|"), "||");
        assert!(rerr("#set($x = 1 / 0)").contains("division by zero"));
        assert!(rerr("#set($x = 1 % 0)").contains("division by zero"));
        assert!(rerr("#set($x = 1.5 / 0)").contains("division by zero"));
        assert_eq!(r("#set($x = -9223372036854775807 - 1)#set($y = $x / -1)$y"), "9.223372036854776e+18");
    }

    #[test]
    fn equality_across_types() {
        assert_eq!(r("#if($input.params('id') == 42)y#end#if(1 == 1.0)z#end#if('a' == 'b')n#end"), "yz");
        assert_eq!(r("#if($input.path('$.n') > 2)gt#end#if('b' > 'a')s#end"), "gt");
    }
}
