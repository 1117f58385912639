//! `#[route_read]` / `#[route_write]`: parse the attribute, check the
//! function, expand to the function plus a registered route.
//!
//! Every mistake the macro can see becomes a `syn::Error` on the token at
//! fault; all of them are reported at once, next to the untouched function so
//! that nothing else breaks. What only the compiler can check (trait bounds
//! on parameter and return types) is generated with the user's spans, so
//! those errors point at the parameter too.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use regex::Regex;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitInt, LitStr, Pat, PatType, Signature, Token, Type};

/// Which macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Read => "route_read",
            Kind::Write => "route_write",
        }
    }
}

/// The parameters bound by name rather than by capture group or type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reserved {
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

/// The attribute's arguments.
pub(crate) struct RouteArgs {
    pattern: LitStr,
    priority: i32,
    /// `max_blksize`, `max_windowsize`, `max_upload`, when given.
    limits: [Option<u64>; 3],
}

/// The per-route limits an attribute may set, with their ranges.
const LIMITS: [(&str, u64, u64, &str); 3] = [
    (
        "max_blksize",
        8,
        65464,
        "the largest blksize granted on this route (RFC 2348: 8..=65464)",
    ),
    (
        "max_windowsize",
        1,
        65535,
        "the largest windowsize granted on this route (RFC 7440: 1..=65535)",
    ),
    (
        "max_upload",
        0,
        u64::MAX,
        "the largest upload accepted on this route, in bytes",
    ),
];

impl std::fmt::Debug for RouteArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteArgs")
            .field("pattern", &self.pattern.value())
            .field("priority", &self.priority)
            .finish()
    }
}

fn parse_args(input: ParseStream<'_>, kind: Kind) -> syn::Result<RouteArgs> {
    let attr = kind.attr();
    if input.is_empty() {
        return Err(input.error(format!(
            "expected the route's pattern, a regex in a string literal: #[{attr}(r\"^boot/(?P<name>.+)$\")]"
        )));
    }
    let pattern = if input.peek(LitStr) {
        input.parse::<LitStr>()?
    } else {
        let token: TokenTree = input.parse()?;
        return Err(syn::Error::new(
            token.span(),
            format!(
                "the route pattern must be a string literal, so that the macro can check it: #[{attr}(r\"^boot/(?P<name>.+)$\")]"
            ),
        ));
    };
    if !pattern.suffix().is_empty() {
        return Err(syn::Error::new(
            pattern.span(),
            "the route pattern must be a plain string literal, without a suffix",
        ));
    }
    let mut priority: Option<i32> = None;
    let mut limits: [Option<u64>; 3] = [None; 3];
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key = input.call(Ident::parse_any)?;
        if key == "priority" {
            if priority.is_some() {
                return Err(syn::Error::new(key.span(), "`priority` is given twice"));
            }
            input.parse::<Token![=]>()?;
            priority = Some(parse_priority(input)?);
            continue;
        }
        let Some(i) = LIMITS.iter().position(|(name, ..)| key == name) else {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown route option `{key}`: the options are `priority = <integer>`, `max_blksize = <8..=65464>`, `max_windowsize = <1..=65535>` and `max_upload = <bytes>`, as in #[{attr}(\"…\", priority = 10)]"
                ),
            ));
        };
        let (name, min, max, what) = LIMITS[i];
        if limits[i].is_some() {
            return Err(syn::Error::new(
                key.span(),
                format!("`{name}` is given twice"),
            ));
        }
        input.parse::<Token![=]>()?;
        let help = format!("`{name}` must be an integer literal in {min}..={max}: {what}");
        let lit: LitInt = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), help.clone()))?;
        let value: u64 = lit
            .base10_parse()
            .map_err(|_| syn::Error::new(lit.span(), help.clone()))?;
        if !(min..=max).contains(&value) {
            return Err(syn::Error::new(lit.span(), help));
        }
        limits[i] = Some(value);
    }
    Ok(RouteArgs {
        pattern,
        priority: priority.unwrap_or(0),
        limits,
    })
}

/// An integer literal with an optional leading minus.
fn parse_priority(input: ParseStream<'_>) -> syn::Result<i32> {
    const HELP: &str = "`priority` must be an integer literal such as 10 or -3 (routes with a higher priority are tried first; the default is 0)";
    let minus = input.parse::<Option<Token![-]>>()?;
    if !input.peek(LitInt) {
        return Err(match input.parse::<TokenTree>() {
            Ok(token) => syn::Error::new(token.span(), HELP),
            Err(_) => input.error(HELP),
        });
    }
    let lit: LitInt = input.parse()?;
    if !matches!(lit.suffix(), "" | "i32") {
        return Err(syn::Error::new(
            lit.span(),
            "`priority` is an i32: drop the suffix",
        ));
    }
    let magnitude: i64 = lit
        .base10_parse()
        .map_err(|_| syn::Error::new(lit.span(), "`priority` must fit in an i32"))?;
    let value = if minus.is_some() {
        -magnitude
    } else {
        magnitude
    };
    i32::try_from(value).map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!("`priority` must fit in an i32, and {value} does not"),
        )
    })
}

/// The names of the pattern's named capture groups.
fn capture_names(pattern: &LitStr) -> syn::Result<Vec<String>> {
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
enum Binding {
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
    fn uses_request_in_closure(&self) -> bool {
        match self {
            Binding::Reserved(r) => *r != Reserved::Data,
            Binding::Capture { borrowed, .. } => *borrowed,
            Binding::RequestRef => true,
            Binding::Upload | Binding::Extract => false,
        }
    }
}

/// A parameter and how it is bound.
struct Param<'a> {
    ty: &'a Type,
    binding: Binding,
}

/// Checks the signature and classifies its parameters; every problem found
/// is in the error.
fn check_signature<'a>(
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
    let name = ident.map(|i| i.unraw().to_string());
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
fn option_inner(ty: &Type) -> Option<&Type> {
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

/// Collects errors to report them all at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The macro: the untouched function, then either the route or the errors.
pub(crate) fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                format!("#[{}] goes on a function (with a body): {e}", kind.attr()),
            )
            .to_compile_error();
            return quote!(#item #e);
        }
    };
    match route(kind, attr, &func) {
        Ok(route) => quote!(#item #route),
        Err(e) => {
            let e = e.to_compile_error();
            quote!(#item #e)
        }
    }
}

/// Parses, checks and generates the route registration.
fn route(kind: Kind, attr: TokenStream, func: &ItemFn) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = (|input: ParseStream<'_>| parse_args(input, kind)).parse2(attr);
    let groups = match &args {
        Ok(args) => capture_names(&args.pattern)
            .map_err(|e| errors.push(e))
            .ok(),
        Err(e) => {
            errors.push(e.clone());
            None
        }
    };
    let params = check_signature(kind, &func.sig, groups.as_deref()).map_err(|e| errors.push(e));
    errors.finish()?;
    let (Ok(args), Ok(params)) = (args, params) else {
        unreachable!("errors were reported above");
    };
    Ok(generate(kind, &args, func, &params))
}

/// The route registration for a checked handler.
fn generate(kind: Kind, args: &RouteArgs, func: &ItemFn, params: &[Param<'_>]) -> TokenStream {
    let sig = &func.sig;
    let fn_ident = &sig.ident;
    let is_async = sig.asyncness.is_some();

    // Captures run first (a failure tries the next route), then extractors
    // (a failure answers the client), then the rest inside the closure.
    let mut captures = Vec::new();
    let mut extracts = Vec::new();
    let mut inner = Vec::new();
    let mut call_args = Vec::new();
    let mut data_let = None;
    for (i, param) in params.iter().enumerate() {
        let local = format_ident!("__emmer_arg{}", i);
        let ty = param.ty;
        let span = ty.span();
        match &param.binding {
            Binding::Reserved(Reserved::Data) => {
                data_let = Some(quote_spanned! {span=>
                    let #local = <#ty as ::emmer::__private::FromBody>::from_body(__data)?;
                });
            }
            Binding::Reserved(reserved) => {
                let (trait_, method, value) = match reserved {
                    Reserved::ClientHost => (
                        quote!(FromClientHost),
                        quote!(from_client_host),
                        quote!(__req.client_host()),
                    ),
                    Reserved::ClientPort => (
                        quote!(FromClientPort),
                        quote!(from_client_port),
                        quote!(__req.client_port()),
                    ),
                    Reserved::Filename => (
                        quote!(FromFilename<'_>),
                        quote!(from_filename),
                        quote!(__req.filename()),
                    ),
                    Reserved::Mode => (quote!(FromMode), quote!(from_mode), quote!(__req.mode())),
                    Reserved::Data => unreachable!("handled above"),
                };
                inner.push(quote_spanned! {span=>
                    let #local = <#ty as ::emmer::__private::#trait_>::#method(#value);
                });
            }
            Binding::Capture {
                name,
                optional,
                borrowed: true,
            } => {
                // The text itself: checked now, borrowed in the closure.
                if !optional {
                    captures.push(quote! {
                        if ::emmer::Request::capture(__req, #name).is_none() {
                            return ::core::result::Result::Err(::emmer::__private::NoMatch);
                        }
                    });
                    inner.push(quote_spanned! {span=>
                        let #local: #ty = ::core::option::Option::unwrap_or(
                            ::emmer::Request::capture(&__req, #name),
                            "",
                        );
                    });
                } else {
                    inner.push(quote_spanned! {span=>
                        let #local: #ty = ::emmer::Request::capture(&__req, #name);
                    });
                }
            }
            Binding::Capture {
                name,
                optional,
                borrowed: false,
            } => {
                let call = if *optional {
                    let inner_ty = option_inner(ty).unwrap_or(ty);
                    quote_spanned!(span=> ::emmer::__private::capture_opt::<#inner_ty>)
                } else {
                    quote_spanned!(span=> ::emmer::__private::capture::<#ty>)
                };
                captures.push(quote! {
                    let #local = #call(__req, #name)?;
                });
            }
            Binding::RequestRef => {
                call_args.push(quote!(&__req));
                continue;
            }
            Binding::Upload => {
                call_args.push(quote!(__upload));
                continue;
            }
            Binding::Extract => {
                let extract = quote_spanned!(span=> ::emmer::__private::extract::<#ty>);
                extracts.push(quote! {
                    let #local = match #extract(__req) {
                        ::core::result::Result::Ok(v) => v,
                        ::core::result::Result::Err(e) => {
                            return ::core::result::Result::Ok(::emmer::__private::reject(e));
                        }
                    };
                });
            }
        }
        call_args.push(quote!(#local));
    }

    let clone_request = params
        .iter()
        .any(|p| p.binding.uses_request_in_closure())
        .then(|| quote!(let __req = ::core::clone::Clone::clone(__req);));

    let call = if is_async {
        quote!(#fn_ident(#(#call_args),*).await)
    } else {
        quote!(#fn_ident(#(#call_args),*))
    };
    // Errors about the return type point at it.
    let ret_span = match &sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => fn_ident.span(),
    };
    let streams = params.iter().any(|p| p.binding == Binding::Upload);
    let data_let = data_let.unwrap_or_else(|| quote!(let _ = __data;));
    // The whole call carries the return type's span, so an unsupported
    // return type errors on it.
    let run = match (kind, is_async) {
        // Checked: only write handlers take an `Upload`.
        (Kind::Write, true) if streams => quote_spanned! {ret_span=>
            ::emmer::__private::write_streaming(move |__upload: ::emmer::Upload| async move {
                #(#inner)*
                #call
            })
        },
        // A plain handler reads its `Upload` with blocking reads
        // (`std::io::Read`), on the blocking pool.
        (Kind::Write, false) if streams => quote_spanned! {ret_span=>
            ::emmer::__private::write_streaming_blocking(move |__upload: ::emmer::Upload| {
                #(#inner)*
                #call
            })
        },
        (Kind::Read, false) => quote_spanned! {ret_span=>
            ::emmer::__private::read_blocking(move || {
                #(#inner)*
                #call
            })
        },
        (Kind::Read, true) => quote_spanned! {ret_span=>
            ::emmer::__private::read_async(async move {
                #(#inner)*
                #call
            })
        },
        (Kind::Write, false) => quote_spanned! {ret_span=>
            ::emmer::__private::write_blocking(move |__data: ::std::vec::Vec<u8>| {
                #data_let
                #(#inner)*
                ::core::result::Result::Ok(#call)
            })
        },
        (Kind::Write, true) => quote_spanned! {ret_span=>
            ::emmer::__private::write_async(move |__data: ::std::vec::Vec<u8>| {
                #data_let
                ::core::result::Result::Ok(async move {
                    #(#inner)*
                    #call
                })
            })
        },
    };

    let kind_variant = match kind {
        Kind::Read => quote!(Read),
        Kind::Write => quote!(Write),
    };
    let pattern = &args.pattern;
    let priority = args.priority;
    let limit = |i: usize, ty: proc_macro2::TokenStream| match args.limits[i] {
        Some(v) => {
            let v = proc_macro2::Literal::u64_unsuffixed(v);
            quote!(::core::option::Option::Some(#v as #ty))
        }
        None => quote!(::core::option::Option::None),
    };
    let max_blksize = limit(0, quote!(u16));
    let max_windowsize = limit(1, quote!(u16));
    let max_upload = limit(2, quote!(u64));
    let name = fn_ident.unraw().to_string();
    // file!/line!/column! on the function's name: the route's location is
    // where the function is declared.
    let location = quote_spanned! {fn_ident.span()=>
        ::emmer::__private::Location::new(::core::file!(), ::core::line!(), ::core::column!())
    };

    // The route exists when the function does.
    let cfgs = func.attrs.iter().filter(|a| a.path().is_ident("cfg"));

    quote! {
        #(#cfgs)*
        const _: () = {
            fn __emmer_prepare(
                __req: &::emmer::Request,
            ) -> ::core::result::Result<::emmer::__private::Prepared, ::emmer::__private::NoMatch> {
                #(#captures)*
                #(#extracts)*
                #clone_request
                ::core::result::Result::Ok(#run)
            }
            ::emmer::__private::inventory::submit! {
                ::emmer::__private::RouteDef {
                    kind: ::emmer::__private::Kind::#kind_variant,
                    pattern: #pattern,
                    priority: #priority,
                    limits: ::emmer::__private::RouteLimits {
                        max_blksize: #max_blksize,
                        max_windowsize: #max_windowsize,
                        max_upload: #max_upload,
                    },
                    name: #name,
                    location: #location,
                    prepare: __emmer_prepare,
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tokens: TokenStream, kind: Kind) -> syn::Result<RouteArgs> {
        (|input: ParseStream<'_>| parse_args(input, kind)).parse2(tokens)
    }

    fn bindings(kind: Kind, pattern: &str, func: TokenStream) -> syn::Result<Vec<Binding>> {
        let func: ItemFn = syn::parse2(func).unwrap();
        let groups = capture_names(&LitStr::new(pattern, Span::call_site())).unwrap();
        check_signature(kind, &func.sig, Some(&groups))
            .map(|params| params.into_iter().map(|p| p.binding).collect())
    }

    fn messages(e: syn::Error) -> Vec<String> {
        e.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn parses_pattern_and_priority() {
        let a = args(quote!(r"^a(?P<x>b)$"), Kind::Read).unwrap();
        assert_eq!(a.pattern.value(), "^a(?P<x>b)$");
        assert_eq!(a.priority, 0);
        assert_eq!(
            args(quote!("a", priority = 7), Kind::Read)
                .unwrap()
                .priority,
            7
        );
        assert_eq!(
            args(quote!("a", priority = -3,), Kind::Read)
                .unwrap()
                .priority,
            -3
        );
        assert_eq!(
            args(quote!("a", priority = -2147483648), Kind::Read)
                .unwrap()
                .priority,
            i32::MIN
        );
        assert_eq!(
            args(quote!("a", priority = 5i32), Kind::Write)
                .unwrap()
                .priority,
            5
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        let cases = [
            (quote!(), "expected the route's pattern"),
            (quote!(PATTERN), "must be a string literal"),
            (quote!(42), "must be a string literal"),
            (quote!("a", prio = 1), "unknown route option `prio`"),
            (quote!("a", priority = x), "must be an integer literal"),
            (quote!("a", priority = 1.5), "must be an integer literal"),
            (quote!("a", priority = "1"), "must be an integer literal"),
            (quote!("a", priority = 3000000000), "must fit in an i32"),
            (quote!("a", priority = 1u8), "drop the suffix"),
            (quote!("a", priority = 1, priority = 2), "given twice"),
        ];
        for (tokens, expected) in cases {
            let text = tokens.to_string();
            let e = args(tokens, Kind::Read).expect_err(&text);
            assert!(e.to_string().contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn invalid_regex_is_reported() {
        let e = capture_names(&LitStr::new("a(b", Span::call_site())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("route pattern is not a valid regex: ")
        );
    }

    #[test]
    fn capture_names_in_order() {
        let names = capture_names(&LitStr::new("(?P<a>x)(y)(?<b>z)", Span::call_site())).unwrap();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn classifies_python_style_handler() {
        let b = bindings(
            Kind::Write,
            ".*",
            quote!(
                fn f(
                    client_host: IpAddr,
                    client_port: u16,
                    filename: &str,
                    mode: Mode,
                    data: Vec<u8>,
                ) {
                }
            ),
        )
        .unwrap();
        assert_eq!(
            b,
            [
                Binding::Reserved(Reserved::ClientHost),
                Binding::Reserved(Reserved::ClientPort),
                Binding::Reserved(Reserved::Filename),
                Binding::Reserved(Reserved::Mode),
                Binding::Reserved(Reserved::Data),
            ]
        );
    }

    #[test]
    fn classifies_captures() {
        let b = bindings(
            Kind::Read,
            "(?P<mac>.*)/(?P<unit>[0-9]+)?/(?P<tag>.*)/(?P<opt>.*)?",
            quote!(
                fn f(mac: String, mut unit: Option<u32>, tag: &str, opt: Option<&str>) {}
            ),
        )
        .unwrap();
        let capture = |name: &str, optional, borrowed| Binding::Capture {
            name: name.into(),
            optional,
            borrowed,
        };
        assert_eq!(
            b,
            [
                capture("mac", false, false),
                capture("unit", true, false),
                capture("tag", false, true),
                capture("opt", true, true),
            ]
        );
    }

    #[test]
    fn reserved_names_win_over_groups() {
        let b = bindings(
            Kind::Read,
            "(?P<filename>.*)",
            quote!(
                fn f(filename: String) {}
            ),
        )
        .unwrap();
        assert_eq!(b, [Binding::Reserved(Reserved::Filename)]);
    }

    #[test]
    fn classifies_by_type() {
        let b = bindings(
            Kind::Read,
            "x",
            quote!(
                fn f(
                    req: &emmer::Request,
                    st: State<Arc<X>>,
                    _: Peer,
                    State(s): State<u8>,
                    Peer { .. }: Peer,
                    r: Request,
                ) {
                }
            ),
        )
        .unwrap();
        assert_eq!(
            b,
            [
                Binding::RequestRef,
                Binding::Extract,
                Binding::Extract,
                Binding::Extract,
                Binding::Extract,
                Binding::Extract,
            ]
        );
    }

    #[test]
    fn plain_value_types() {
        for ty in [
            quote!(String),
            quote!(&str),
            quote!(&'static str),
            quote!(u64),
            quote!(std::net::IpAddr),
            quote!(Option<Foo>),
            quote!(PathBuf),
            quote!(f32),
        ] {
            let ty: Type = syn::parse2(ty).unwrap();
            assert!(is_plain_value(&ty), "{}", quote!(#ty));
        }
        for ty in [
            quote!(State<u32>),
            quote!(Peer),
            quote!(Vec<u8>),
            quote!(&Request),
            quote!((u8, u8)),
        ] {
            let ty: Type = syn::parse2(ty).unwrap();
            assert!(!is_plain_value(&ty), "{}", quote!(#ty));
        }
    }

    #[test]
    fn unknown_name_with_plain_type_is_an_error() {
        let e = bindings(
            Kind::Read,
            "(?P<a>x)(?P<b>y)",
            quote!(
                fn f(mac: String) {}
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`mac` is not a named capture group of the route pattern (its groups: a, b); add (?P<mac>...) to the pattern or use one of: client_host, client_port, filename, mode"
        );
        let e = bindings(
            Kind::Write,
            "x",
            quote!(
                fn f(mac: u32) {}
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`mac` is not a named capture group of the route pattern (it has no named groups); add (?P<mac>...) to the pattern or use one of: client_host, client_port, filename, mode, data"
        );
    }

    #[test]
    fn suggests_near_names() {
        let e = bindings(
            Kind::Read,
            "(?P<mac>x)",
            quote!(
                fn f(filname: &str, mca: String) {}
            ),
        )
        .unwrap_err();
        let m = messages(e);
        assert!(m[0].ends_with("(did you mean `filename`?)"), "{}", m[0]);
        assert!(m[1].ends_with("(did you mean `mac`?)"), "{}", m[1]);
        let e = bindings(
            Kind::Read,
            "(?P<b>x)",
            quote!(
                fn f(a: String) {}
            ),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
        let e = bindings(
            Kind::Read,
            "(?P<host>x)",
            quote!(
                fn f(hots: String) {}
            ),
        )
        .unwrap_err();
        assert!(e.to_string().ends_with("(did you mean `host`?)"), "{e}");
    }

    #[test]
    fn signature_errors_are_combined() {
        let e = bindings(
            Kind::Read,
            "(?P<a>x)",
            quote!(
                fn f<T>(&self, data: Vec<u8>, (a, b): (u8, u8), ref x: u8, y: impl Fn()) {}
            ),
        )
        .unwrap_err();
        let m = messages(e);
        assert_eq!(m.len(), 6, "{m:#?}");
        assert!(m[0].contains("cannot be generic"));
        assert!(m[1].contains("cannot take `self`"));
        assert!(m[2].contains("only #[route_write] handlers receive one"));
        assert!(m[3].contains("must be a name"));
        assert!(m[4].contains("must be a name"));
        assert!(m[5].contains("cannot be `impl Trait`"));
    }

    #[test]
    fn upload_rules() {
        let b = bindings(
            Kind::Write,
            "(?P<host>x)",
            quote!(
                async fn f(host: String, upload: emmer::Upload) {}
            ),
        )
        .unwrap();
        assert_eq!(b[1], Binding::Upload);
        let m = messages(
            bindings(
                Kind::Read,
                "x",
                quote!(
                    async fn f(u: Upload) {}
                ),
            )
            .unwrap_err(),
        );
        assert!(m[0].contains("only #[route_write]"), "{m:?}");
        let out = expand(
            Kind::Write,
            quote!(".*"),
            quote!(
                fn f(u: Upload) {}
            ),
        )
        .to_string();
        assert!(out.contains("write_streaming_blocking"), "{out}");
        let m = messages(
            bindings(
                Kind::Write,
                "x",
                quote!(
                    async fn f(data: Vec<u8>, u: Upload) {}
                ),
            )
            .unwrap_err(),
        );
        assert!(
            m[0].contains("already takes the whole upload as `data`"),
            "{m:?}"
        );

        let out = expand(
            Kind::Write,
            quote!(".*"),
            quote!(
                async fn f(filename: String, up: Upload) {}
            ),
        )
        .to_string();
        assert!(
            out.contains("write_streaming (move | __upload : :: emmer :: Upload | async move"),
            "{out}"
        );
        assert!(out.contains("f (__emmer_arg0 , __upload) . await"), "{out}");
    }

    #[test]
    fn data_is_fine_on_write_routes_only() {
        assert!(
            bindings(
                Kind::Write,
                "x",
                quote!(
                    fn f(data: String) {}
                )
            )
            .is_ok()
        );
        assert!(
            bindings(
                Kind::Read,
                "(?P<data>x)",
                quote!(
                    fn f(data: String) {}
                )
            )
            .is_err()
        );
    }

    #[test]
    fn expansion_of_a_read_route() {
        let out = expand(
            Kind::Read,
            quote!(r"^(?P<mac>[0-9a-f]+)(?:/(?P<unit>\d+))?$", priority = -3),
            quote!(
                fn pxe(
                    client_host: IpAddr,
                    mac: String,
                    unit: Option<u32>,
                    st: State<Arc<X>>,
                    req: &Request,
                ) -> String {
                    String::new()
                }
            ),
        )
        .to_string();
        for expected in [
            "fn pxe",
            "capture :: < String > (__req , \"mac\") ?",
            "capture_opt :: < u32 > (__req , \"unit\") ?",
            "extract :: < State < Arc < X > > >",
            "let __req = :: core :: clone :: Clone :: clone (__req) ;",
            "read_blocking (move ||",
            "FromClientHost > :: from_client_host (__req . client_host ())",
            "pxe (__emmer_arg0 , __emmer_arg1 , __emmer_arg2 , __emmer_arg3 , & __req)",
            "kind : :: emmer :: __private :: Kind :: Read",
            "priority : - 3i32",
            "name : \"pxe\"",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in\n{out}");
        }
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn expansion_of_write_routes() {
        let out = expand(
            Kind::Write,
            quote!(".*"),
            quote!(
                async fn up(filename: String, data: Vec<u8>) {}
            ),
        )
        .to_string();
        assert!(out.contains("write_async (move | __data"), "{out}");
        assert!(out.contains("FromBody > :: from_body (__data) ?"), "{out}");
        assert!(
            out.contains("up (__emmer_arg0 , __emmer_arg1) . await"),
            "{out}"
        );

        let out = expand(
            Kind::Write,
            quote!(".*"),
            quote!(
                fn up() -> bool {
                    true
                }
            ),
        )
        .to_string();
        assert!(out.contains("write_blocking (move | __data"), "{out}");
        assert!(out.contains("let _ = __data ;"), "{out}");
        assert!(!out.contains("Clone :: clone"), "{out}");
    }

    #[test]
    fn cfg_applies_to_the_route() {
        let out = expand(
            Kind::Read,
            quote!("x"),
            quote!(
                #[cfg(test)]
                #[doc = "d"]
                fn f() -> &'static str {
                    ""
                }
            ),
        )
        .to_string();
        let route = &out[out.find("const _").unwrap() - 20..];
        assert!(route.contains("# [cfg (test)] const _"), "{out}");
        assert!(!route.contains("doc"), "{out}");
    }

    #[test]
    fn errors_keep_the_item() {
        let out = expand(
            Kind::Read,
            quote!("a("),
            quote!(
                fn f() -> &'static str {
                    ""
                }
            ),
        )
        .to_string();
        assert!(out.starts_with("fn f"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("submit"), "{out}");

        let out = expand(
            Kind::Read,
            quote!("a"),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(out.starts_with("struct S"), "{out}");
        assert!(out.contains("goes on a function"), "{out}");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("mac", "mac"), 0);
        assert_eq!(edit_distance("mca", "mac"), 1);
        assert!(is_near("filname", "filename"));
        assert!(is_near("MAC", "mac"));
        assert!(!is_near("ab", "ac"));
        assert!(!is_near("unit", "mode"));
    }
}
