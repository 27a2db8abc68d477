//! The compiled form of a template: nodes, references and expressions, immutable and `Send + Sync`.
//! Variables are resolved to numbered slots at compile time, so rendering never looks names up.

/// One piece of template output or one directive.
#[derive(Debug)]
pub(crate) enum Node {
    Text(Box<str>),
    Ref(Ref),
    Set(Target, Expr),
    /// `(condition, body)` arms in order, then the `#else` body (maybe empty).
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
    Foreach {
        var: usize,
        iter: Expr,
        body: Vec<Node>,
    },
    Break,
    Stop,
}

/// `$root.seg.seg(...)[...]`, with its source text for the undefined-reference fallback.
#[derive(Debug)]
pub(crate) struct Ref {
    pub root: Root,
    pub segs: Vec<Seg>,
    pub quiet: bool,
    pub src: Box<str>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Root {
    Var(usize),
    Input,
    Context,
    StageVars,
    Util,
    Foreach,
    VelocityCount,
}

#[derive(Debug)]
pub(crate) enum Seg {
    Prop(Box<str>),
    Index(Expr),
    Call(Box<str>, Vec<Expr>),
}

/// Left side of `#set`.
#[derive(Debug)]
pub(crate) enum Target {
    /// A variable, then property/index steps into it (never calls).
    Var(usize, Vec<Seg>),
    Override(OvKind, Key),
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OvKind {
    ReqHeader,
    ReqQuery,
    ReqPath,
    RespHeader,
}

#[derive(Debug)]
pub(crate) enum Key {
    Name(Box<str>),
    Expr(Expr),
}

#[derive(Debug)]
pub(crate) enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
    /// A double-quoted string with references in it: rendered like template text.
    Interp(Vec<Node>),
    Ref(Box<Ref>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Range(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}
