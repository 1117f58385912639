//! The handler's signature: each parameter bound by reserved name, capture
//! group, `&Request`, `Upload` or type, after checking the pattern is a valid
//! regex and reading its group names; whatever cannot be bound is an error on
//! the parameter, with a did-you-mean hint when a name is close to one that
//! would be.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use regex::Regex;
use syn::ext::IdentExt;
use syn::{FnArg, LitStr, Pat, PatType, Signature, Type};

use crate::route::{Errors, Kind};

/// The parameters bound by name rather than by capture group or type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserved {
    ClientHost,
    ClientPort,
    Filename,
    Mode,
    Data,
}

const RESERVED: [(&str, Reserved); 5] = [
    ("client_host", Reserved::ClientHost),
    ("client_port", Reserved::ClientPort),
    ("filename", Reserved::Filename),
    ("mode", Reserved::Mode),
    ("data", Reserved::Data),
];

impl Reserved {
    fn from_name(name: &str) -> Option<Self> {
        RESERVED.iter().find(|(n, _)| *n == name).map(|&(_, r)| r)
    }

    /// The names a handler of this kind may take.
    fn names(kind: Kind) -> impl Iterator<Item = &'static str> {
        RESERVED
            .iter()
            .filter(move |(_, r)| kind == Kind::Write || *r != Reserved::Data)
            .map(|(n, _)| *n)
    }
}

/// The names of the pattern's named capture groups.
pub(crate) fn capture_names(pattern: &LitStr) -> syn::Result<Vec<String>> {
    let re = Regex::new(&pattern.value()).map_err(|e| {
        syn::Error::new(
            pattern.span(),
            format!("route pattern is not a valid regex: {e}"),
        )
    })?;
    Ok(re.capture_names().flatten().map(str::to_owned).collect())
}

/// How one parameter is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// By reserved name.
    Reserved(Reserved),
    /// By capture group name.
    Capture {
        name: String,
        /// `Option<T>`: a group that did not take part is `None`.
        optional: bool,
        /// `&str` / `Option<&str>`: the text itself, borrowed from the
        /// request.
        borrowed: bool,
    },
    /// `&Request`.
    RequestRef,
    /// `Upload`: the body of a write, streamed.
    Upload,
    /// By type, through `FromRequest`.
    Extract,
}

impl Binding {
    /// Whether the bound value is computed from the request inside the
    /// handler's closure (so the closure needs its own copy of the request).
    pub(crate) fn uses_request_in_closure(&self) -> bool {
        match self {
            Binding::Reserved(r) => *r != Reserved::Data,
            Binding::Capture { borrowed, .. } => *borrowed,
            Binding::RequestRef => true,
            Binding::Upload | Binding::Extract => false,
        }
    }
}

/// A parameter and how it is bound.
pub(crate) struct Param<'a> {
    pub(crate) ty: &'a Type,
    pub(crate) binding: Binding,
}

/// Checks the signature and classifies its parameters; every problem found
/// is in the error.
pub(crate) fn check_signature<'a>(
    kind: Kind,
    sig: &'a Signature,
    groups: Option<&[String]>,
) -> syn::Result<Vec<Param<'a>>> {
    let mut errors = Errors::default();
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a route handler cannot be generic: the macro must know every parameter's type to bind it; use concrete types",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a route handler cannot be `unsafe fn`: the generated code would have to call it in an unsafe block; make it safe and use `unsafe` inside",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a route handler cannot be variadic",
        ));
    }
    let mut params = Vec::new();
    let mut body: Option<Binding> = None;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "a route handler is a free function and cannot take `self`; move it out of the impl block, and take shared data as State<T>",
            )),
            FnArg::Typed(pat_type) => match classify(kind, pat_type, groups) {
                Ok(binding) => {
                    let takes_body = matches!(
                        binding,
                        Binding::Upload | Binding::Reserved(Reserved::Data)
                    );
                    if takes_body {
                        if let Some(first) = &body {
                            let what = if *first == Binding::Upload {
                                "this handler already streams the upload with an `Upload` parameter"
                            } else {
                                "this handler already takes the whole upload as `data`"
                            };
                            errors.push(syn::Error::new_spanned(
                                pat_type,
                                format!("{what}; a handler takes the body once, either whole (`data`) or streamed (`Upload`)"),
                            ));
                        } else {
                            body = Some(binding.clone());
                        }
                    }
                    params.push(Param {
                        ty: &pat_type.ty,
                        binding,
                    });
                }
                Err(e) => errors.push(e),
            },
        }
    }
    errors.finish()?;
    Ok(params)
}

/// Decides how a parameter is bound.
fn classify(kind: Kind, arg: &PatType, groups: Option<&[String]>) -> syn::Result<Binding> {
    let ty = &*arg.ty;
    let ident = match &*arg.pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(&p.ident),
        // `_: Peer`, `State(s): State<T>`, `Peer { .. }`: by type.
        Pat::Wild(_) | Pat::TupleStruct(_) | Pat::Struct(_) => None,
        pat => {
            return Err(syn::Error::new_spanned(
                pat,
                "a handler parameter must be a name (`mac`, `mut mac`), `_`, or a destructured extractor (`State(s)`); bind it to a name and destructure it in the body",
            ));
        }
    };
    if let Some(span) = find_impl_trait(ty) {
        return Err(syn::Error::new(
            span,
            "a handler parameter cannot be `impl Trait`: the macro must name its type to bind it; use a concrete type",
        ));
    }
    let name = ident.map(|i| bound_name(&i.unraw().to_string(), groups));
    if let Some(name) = &name {
        if let Some(reserved) = Reserved::from_name(name) {
            if reserved == Reserved::Data && kind == Kind::Read {
                return Err(syn::Error::new_spanned(
                    arg,
                    "`data` is the upload body; only #[route_write] handlers receive one",
                ));
            }
            return Ok(Binding::Reserved(reserved));
        }
        if groups.is_some_and(|g| g.iter().any(|g| g == name)) {
            let (optional, inner) = match option_inner(ty) {
                Some(inner) => (true, inner),
                None => (false, ty),
            };
            return Ok(Binding::Capture {
                name: name.clone(),
                optional,
                borrowed: is_str_ref(inner),
            });
        }
    }
    if is_request_ref(ty) {
        return Ok(Binding::RequestRef);
    }
    if is_upload(ty) {
        if kind == Kind::Read {
            return Err(syn::Error::new_spanned(
                arg,
                "`Upload` streams the body of an upload; only #[route_write] handlers receive one",
            ));
        }
        return Ok(Binding::Upload);
    }
    if let (Some(ident), Some(name), Some(groups)) = (ident, &name, groups) {
        if is_plain_value(ty) {
            return Err(syn::Error::new(
                ident.span(),
                unknown_name_message(kind, name, groups),
            ));
        }
    }
    Ok(Binding::Extract)
}

/// The name a parameter binds by: its own, or without a leading `_` when
/// only that one is reserved or a group (`_client_host` is `client_host`,
/// as rustc suggests for an unused parameter).
fn bound_name(name: &str, groups: Option<&[String]>) -> String {
    let binds = |n: &str| {
        Reserved::from_name(n).is_some() || groups.is_some_and(|g| g.iter().any(|g| g == n))
    };
    match name.strip_prefix('_') {
        Some(rest) if !rest.is_empty() && !binds(name) && binds(rest) => rest.to_owned(),
        _ => name.to_owned(),
    }
}

/// The error for a plain-typed parameter that nothing binds by name.
fn unknown_name_message(kind: Kind, name: &str, groups: &[String]) -> String {
    let its_groups = if groups.is_empty() {
        "it has no named groups".to_owned()
    } else {
        format!("its groups: {}", groups.join(", "))
    };
    let reserved: Vec<&str> = Reserved::names(kind).collect();
    let mut message = format!(
        "`{name}` is not a named capture group of the route pattern ({its_groups}); add (?P<{name}>...) to the pattern or use one of: {}",
        reserved.join(", ")
    );
    let near = groups
        .iter()
        .map(String::as_str)
        .chain(reserved.iter().copied())
        .filter(|candidate| is_near(name, candidate))
        .min_by_key(|candidate| edit_distance(name, candidate));
    if let Some(near) = near {
        message.push_str(&format!(" (did you mean `{near}`?)"));
    }
    message
}

/// Close enough to be a typo: one edit in a name of 3 to 5 characters, a
/// third of the characters in a longer one.
fn is_near(a: &str, b: &str) -> bool {
    let shorter = a.chars().count().min(b.chars().count());
    a.eq_ignore_ascii_case(b) || (shorter >= 3 && edit_distance(a, b) <= (shorter / 3).max(1))
}

/// Edit distance counting insertions, deletions, substitutions and swaps of
/// two neighbours (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The last segment of a path type without `<T as Trait>::`.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

/// `T` in `Option<T>` (any path ending in `Option`).
pub(crate) fn option_inner(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// `&str`.
fn is_str_ref(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => {
            r.mutability.is_none() && last_segment(&r.elem).is_some_and(|s| s.ident == "str")
        }
        Type::Group(g) => is_str_ref(&g.elem),
        Type::Paren(p) => is_str_ref(&p.elem),
        _ => false,
    }
}

/// `&Request`, `&emmer::Request`: a shared reference to a path ending in
/// `Request`.
fn is_request_ref(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => {
            r.mutability.is_none()
                && last_segment(&r.elem)
                    .is_some_and(|s| s.ident == "Request" && s.arguments.is_none())
        }
        Type::Group(g) => is_request_ref(&g.elem),
        Type::Paren(p) => is_request_ref(&p.elem),
        _ => false,
    }
}

/// `State<T>`, `emmer::State<T>`: a path ending in `State` with arguments.
pub(crate) fn is_state(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "State" && !s.arguments.is_none())
}

/// `Upload`, `emmer::Upload`.
fn is_upload(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Upload" && s.arguments.is_none())
}

/// A type that reads as a value taken from the file name rather than an
/// extractor: when a parameter of such a type is neither reserved nor a
/// capture group, the name is most likely a typo or a group missing from the
/// pattern.
fn is_plain_value(ty: &Type) -> bool {
    const PLAIN: &[&str] = &[
        "String", "str", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64",
        "u128", "usize", "f32", "f64", "bool", "char", "IpAddr", "Ipv4Addr", "Ipv6Addr", "PathBuf",
        "Option",
    ];
    match ty {
        Type::Reference(r) => is_plain_value(&r.elem),
        Type::Group(g) => is_plain_value(&g.elem),
        Type::Paren(p) => is_plain_value(&p.elem),
        // `Option<Traceparent>` is an extractor; `Option<u32>` a group.
        _ if option_inner(ty).is_some() => option_inner(ty).is_some_and(is_plain_value),
        _ => last_segment(ty).is_some_and(|s| PLAIN.iter().any(|p| s.ident == p)),
    }
}

/// The span of an `impl` keyword anywhere in the type.
fn find_impl_trait(ty: &Type) -> Option<Span> {
    fn scan(tokens: TokenStream) -> Option<Span> {
        tokens.into_iter().find_map(|tt| match tt {
            TokenTree::Ident(i) if i == "impl" => Some(i.span()),
            TokenTree::Group(g) => scan(g.stream()),
            _ => None,
        })
    }
    scan(quote!(#ty))
}

#[cfg(test)]
mod tests;
