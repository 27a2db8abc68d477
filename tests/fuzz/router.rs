//! The route trie against a naive reference matcher: random route sets (static, {param} and
//! {greedy+} segments; seven methods and ANY) and random paths must give the same route and
//! the same captures. Precedence (api-gateway-behavior.md section 2.2): per segment static >
//! {param} > {greedy+}, earlier segments first; an explicit method beats ANY on the same
//! resource; the method takes part in matching (fall back to a shallower greedy resource).

use crate::gen::Source;
use ringway::http::method::{Method, RouteMethod};
use ringway::route::trie::{parse_template, InsertError, Segment};
use ringway::route::{Captures, Trie};

const STATICS: &[&str] = &["a", "b", "pets", "x1", "a.b", "%2F", "~", "ab"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Static,
    Param,
    Greedy,
}

fn kind(s: &Segment) -> Kind {
    match s {
        Segment::Static(_) => Kind::Static,
        Segment::Param(_) => Kind::Param,
        Segment::Greedy(_) => Kind::Greedy,
    }
}

/// The node a prefix of segments leads to: statics by text, parameters by position only.
fn same_node(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Segment::Static(p), Segment::Static(q)) => p == q,
            _ => kind(x) == kind(y),
        })
}

struct Route {
    segs: Vec<Segment>,
    method: RouteMethod,
    id: u32,
}

/// What inserting `new` into a trie holding `routes` must do.
fn expected_insert(routes: &[Route], segs: &[Segment], method: RouteMethod) -> Result<(), InsertError> {
    for i in 0..segs.len() {
        let (Segment::Param(name) | Segment::Greedy(name)) = &segs[i] else { continue };
        for r in routes {
            if r.segs.len() > i && same_node(&r.segs[..i], &segs[..i]) && kind(&r.segs[i]) == kind(&segs[i]) {
                let (Segment::Param(other) | Segment::Greedy(other)) = &r.segs[i] else { unreachable!() };
                if other != name {
                    return Err(InsertError::ParamConflict { existing: other.clone(), new: name.clone() });
                }
            }
        }
    }
    match routes.iter().find(|r| same_node(&r.segs, segs) && r.method == method) {
        Some(r) => Err(InsertError::Duplicate(r.id)),
        None => Ok(()),
    }
}

/// Tries every route; keeps the most specific match.
fn reference(routes: &[Route], path: &[u8], method: Method) -> Option<(u32, Vec<(u32, u32)>)> {
    let mut start = 0;
    let mut end = path.len();
    while start < end && path[start] == b'/' {
        start += 1;
    }
    while end > start && path[end - 1] == b'/' {
        end -= 1;
    }
    let mut segs: Vec<(usize, usize)> = Vec::new();
    if start < end {
        let mut a = start;
        for piece in path[start..end].split(|&b| b == b'/') {
            segs.push((a, a + piece.len()));
            a += piece.len() + 1;
        }
    }
    type Best = ((Vec<Kind>, u8), u32, Vec<(u32, u32)>);
    let mut best: Option<Best> = None;
    for r in routes {
        let rank = match r.method {
            RouteMethod::One(m) if m == method => 0,
            RouteMethod::Any => 1,
            RouteMethod::One(_) => continue,
        };
        let mut caps = Vec::new();
        let mut ok = true;
        let mut consumed = 0;
        for (i, seg) in r.segs.iter().enumerate() {
            let Some(&(a, b)) = segs.get(i) else {
                ok = false;
                break;
            };
            match seg {
                Segment::Static(s) => ok = &path[a..b] == s.as_bytes(),
                Segment::Param(_) => {
                    ok = a < b;
                    caps.push((a as u32, b as u32));
                }
                Segment::Greedy(_) => {
                    caps.push((a as u32, end as u32));
                    consumed = segs.len();
                    break;
                }
            }
            if !ok {
                break;
            }
            consumed = i + 1;
        }
        if !ok || consumed != segs.len() {
            continue;
        }
        let key = (r.segs.iter().map(kind).collect::<Vec<_>>(), rank);
        if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
            best = Some((key, r.id, caps));
        }
    }
    best.map(|(_, id, caps)| (id, caps))
}

fn gen_template(s: &mut Source) -> String {
    let mut t = String::new();
    let n = s.below(5);
    for depth in 0..n {
        t.push('/');
        match s.below(10) {
            0..=4 => t.push_str(s.pick(STATICS)),
            5..=7 => {
                // Mostly one name per depth; sometimes another, to exercise conflicts.
                let name = if s.one_in(8) { format!("q{depth}") } else { format!("p{depth}") };
                t.push_str(&format!("{{{name}}}"));
            }
            _ => {
                let name = if s.one_in(8) { "rest" } else { "proxy" };
                t.push_str(&format!("{{{name}+}}"));
                break;
            }
        }
    }
    if t.is_empty() || s.one_in(6) {
        t.push('/');
    }
    t
}

fn gen_path(s: &mut Source, templates: &[String]) -> Vec<u8> {
    let mut p = Vec::new();
    if s.one_in(6) {
        p.push(b'/');
    }
    // Half the paths instantiate a route template, the rest are free-form.
    if !templates.is_empty() && s.bool() {
        let t = &templates[s.below(templates.len())];
        for seg in t.split('/').filter(|x| !x.is_empty()) {
            p.push(b'/');
            if seg.starts_with('{') {
                for _ in 0..1 + s.below(if seg.ends_with("+}") { 3 } else { 1 }) {
                    p.extend_from_slice(s.pick(&["v", "7", "a", "", "x/y"]).as_bytes());
                    p.push(b'/');
                }
                p.pop();
            } else {
                p.extend_from_slice(seg.as_bytes());
            }
        }
    } else {
        for _ in 0..s.below(6) {
            p.push(b'/');
            p.extend_from_slice(s.pick(&["a", "b", "pets", "x1", "", "7", "ab", "A", "a.b"]).as_bytes());
        }
    }
    if s.one_in(5) {
        p.push(b'/');
    }
    p
}

pub fn router(data: &[u8]) {
    let mut s = Source::new(data);
    let mut trie = Trie::default();
    let mut routes: Vec<Route> = Vec::new();
    let mut templates = Vec::new();
    for i in 0..1 + s.below(14) as u32 {
        let t = gen_template(&mut s);
        let segs = parse_template(&t).unwrap_or_else(|e| panic!("generated template {t}: {e}"));
        let method = match s.below(9) {
            0 | 1 => RouteMethod::Any,
            k => RouteMethod::One(Method::ALL[k - 2]),
        };
        let want = expected_insert(&routes, &segs, method);
        let got = trie.insert(&segs, method, i);
        assert_eq!(got, want, "inserting {} {t}", method.as_str());
        if got.is_ok() {
            routes.push(Route { segs, method, id: i });
            templates.push(t);
        }
    }
    let mut caps = Captures::new();
    for _ in 0..1 + s.below(24) {
        let path = gen_path(&mut s, &templates);
        let method = Method::ALL[s.below(7)];
        let got = trie.lookup(&path, method, &mut caps).map(|r| (r, caps.to_vec()));
        let want = reference(&routes, &path, method);
        if got != want {
            let table: Vec<String> =
                routes.iter().map(|r| format!("{} {} {:?}", r.id, r.method.as_str(), r.segs)).collect();
            panic!(
                "{} {:?}: trie {got:?}, reference {want:?}\nroutes:\n{}",
                method.as_str(),
                String::from_utf8_lossy(&path),
                table.join("\n")
            );
        }
        if s.exhausted() {
            break;
        }
    }
}
