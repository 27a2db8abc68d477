//! JSON pointers: the instance path behind a failure and pointer rendering for messages.
//! Pure: touches only the path and strings it is given.

/// Instance location, built on the stack; rendered only when something fails.
pub(super) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

pub(super) fn fail(path: &Path, msg: String) -> Result<(), String> {
    let mut segs = Vec::new();
    let mut p = path;
    loop {
        match p {
            Path::Root => break,
            Path::Key(up, k) => {
                segs.push(escape(k));
                p = up;
            }
            Path::Index(up, i) => {
                segs.push(i.to_string());
                p = up;
            }
        }
    }
    let mut ptr = String::new();
    for s in segs.iter().rev() {
        ptr.push('/');
        ptr.push_str(s);
    }
    Err(format!("{}: {msg}", show_ptr(&ptr)))
}

pub(super) fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// The root pointer is "", which reads badly in a message.
pub(super) fn show_ptr(p: &str) -> &str {
    if p.is_empty() {
        "(root)"
    } else {
        p
    }
}
