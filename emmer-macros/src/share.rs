//! `share_for = "2s"` on `#[route_read]`: its value, the parameters a shared
//! handler may not take, and the `sharing` field of the route.
//!
//! Concurrent requests for one file name share one call of a shared
//! handler, so the handler must not depend on what differs between the
//! clients: parameters bound to the client's address, port or trace
//! context are errors on the parameter.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::ParseStream;
use syn::{FnArg, Ident, LitStr, Signature, Token, Type};

use crate::check::{Binding, Param, Reserved, option_inner};
use crate::route::{Errors, Kind};

/// `share_for = "…"`, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShareFor {
    pub(crate) millis: u64,
}

const HELP: &str = "`share_for` is how long a shared body is kept, a string with a unit: \"2s\", \"500ms\" (\"0s\" shares only among requests that overlap)";

/// Parses `= "2s"` after the `share_for` key.
pub(crate) fn parse_share_for(
    input: ParseStream<'_>,
    key: &Ident,
    kind: Kind,
) -> syn::Result<ShareFor> {
    if kind == Kind::Write {
        return Err(syn::Error::new(
            key.span(),
            "`share_for` shares the body a read route sends; a write route has none to share",
        ));
    }
    input.parse::<Token![=]>()?;
    let lit: LitStr = input.parse().map_err(|e| syn::Error::new(e.span(), HELP))?;
    let millis = millis(&lit.value()).ok_or_else(|| syn::Error::new(lit.span(), HELP))?;
    Ok(ShareFor { millis })
}

/// `"2s"` or `"500ms"` in milliseconds.
fn millis(text: &str) -> Option<u64> {
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(digits);
    let n: u64 = n.parse().ok()?;
    match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        _ => None,
    }
}

/// Each parameter bound to something that differs between the clients
/// sharing a body is an error.
pub(crate) fn check_params(sig: &Signature, params: &[Param<'_>]) -> syn::Result<()> {
    let mut errors = Errors::default();
    let typed = sig.inputs.iter().filter_map(|a| match a {
        FnArg::Typed(t) => Some(t),
        FnArg::Receiver(_) => None,
    });
    for (arg, param) in typed.zip(params) {
        let what = match &param.binding {
            Binding::Reserved(Reserved::ClientHost) => {
                Some("`client_host` is the client's address")
            }
            Binding::Reserved(Reserved::ClientPort) => Some("`client_port` is the client's port"),
            Binding::Extract if is(param.ty, "Peer") => {
                Some("`Peer` is the client's address and port")
            }
            Binding::Extract if is(param.ty, "SocketAddr") => {
                Some("`SocketAddr` is the client's address and port")
            }
            Binding::Extract if option_inner(param.ty).is_some_and(|t| is(t, "Traceparent")) => {
                Some("`Option<Traceparent>` is the client's trace context")
            }
            _ => None,
        };
        if let Some(what) = what {
            errors.push(syn::Error::new_spanned(
                arg,
                format!(
                    "{what}, and the requests of a route with `share_for` share one call whichever client sent them: take only what the file name decides (captures, `filename`, `mode`, `State<T>`), or drop `share_for`"
                ),
            ));
        }
    }
    errors.finish()
}

/// A path type whose last segment is `name`, without arguments.
fn is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == name && s.arguments.is_none()),
        Type::Group(g) => is(&g.elem, name),
        Type::Paren(p) => is(&p.elem, name),
        _ => false,
    }
}

/// The `sharing` field of the route's `RouteDef`.
pub(crate) fn sharing(share: Option<ShareFor>) -> TokenStream {
    match share {
        Some(ShareFor { millis, .. }) => {
            let millis = proc_macro2::Literal::u64_unsuffixed(millis);
            quote!(::core::option::Option::Some(::emmer::Sharing::new(
                ::core::time::Duration::from_millis(#millis)
            )))
        }
        None => quote!(::core::option::Option::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{capture_names, check_signature};
    use proc_macro2::Span;
    use syn::ItemFn;

    #[test]
    fn durations() {
        assert_eq!(millis("2s"), Some(2000));
        assert_eq!(millis("500ms"), Some(500));
        assert_eq!(millis("0s"), Some(0));
        for bad in [
            "2",
            "s",
            "2 s",
            "1.5s",
            "2m",
            "-1s",
            "",
            "99999999999999999999s",
        ] {
            assert_eq!(millis(bad), None, "{bad:?}");
        }
    }

    fn args(tokens: TokenStream, kind: Kind) -> syn::Result<crate::parse::RouteArgs> {
        use syn::parse::Parser;
        (|input: ParseStream<'_>| crate::parse::parse_args(input, kind)).parse2(tokens)
    }

    #[test]
    fn parses_share_for() {
        let a = args(quote!("a", share_for = "2s", priority = 1), Kind::Read).unwrap();
        assert_eq!(a.share_for.map(|s| s.millis), Some(2000));
        assert!(args(quote!("a"), Kind::Read).unwrap().share_for.is_none());
        let cases = [
            (
                quote!("a", share_for = 2),
                Kind::Read,
                "a string with a unit",
            ),
            (
                quote!("a", share_for = "2"),
                Kind::Read,
                "a string with a unit",
            ),
            (quote!("a", share_for), Kind::Read, "expected `=`"),
            (
                quote!("a", share_for = "1s", share_for = "2s"),
                Kind::Read,
                "given twice",
            ),
            (
                quote!("a", share_for = "2s"),
                Kind::Write,
                "a write route has none",
            ),
        ];
        for (tokens, kind, expected) in cases {
            let text = tokens.to_string();
            let e = args(tokens, kind).err().unwrap_or_else(|| panic!("{text}"));
            assert!(e.to_string().contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn the_route_says_how_it_shares() {
        let func = quote!(
            fn f(mac: String) -> String {
                mac
            }
        );
        let shared = crate::route::expand(
            Kind::Read,
            quote!("(?P<mac>.*)", share_for = "1500ms"),
            func.clone(),
        );
        let expected = sharing(Some(ShareFor { millis: 1500 })).to_string();
        assert!(expected.contains("from_millis (1500)"), "{expected}");
        assert!(
            shared
                .to_string()
                .contains(&format!("sharing : {expected}")),
            "{shared}"
        );
        let plain = crate::route::expand(Kind::Read, quote!("(?P<mac>.*)"), func);
        let none = quote!(sharing: ::core::option::Option::None).to_string();
        assert!(plain.to_string().contains(&none), "{plain}");
    }

    fn check(func: TokenStream) -> Result<(), Vec<String>> {
        let func: ItemFn = syn::parse2(func).unwrap();
        let groups = capture_names(&LitStr::new("(?P<mac>.*)", Span::call_site())).unwrap();
        let params = check_signature(Kind::Read, &func.sig, Some(&groups)).unwrap();
        check_params(&func.sig, &params).map_err(|e| e.into_iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn client_dependent_parameters_are_refused() {
        assert!(
            check(quote!(
                fn f(mac: String, filename: &str, mode: Mode, st: State<u8>, req: &Request) {}
            ))
            .is_ok()
        );
        let m = check(quote!(
            fn f(
                _client_host: IpAddr,
                client_port: u16,
                p: emmer::Peer,
                a: std::net::SocketAddr,
                t: Option<Traceparent>,
            ) {
            }
        ))
        .unwrap_err();
        assert_eq!(m.len(), 5, "{m:#?}");
        assert!(
            m[0].starts_with("`client_host` is the client's address"),
            "{}",
            m[0]
        );
        assert!(m[1].starts_with("`client_port`"), "{}", m[1]);
        assert!(m[2].starts_with("`Peer` is the client's"), "{}", m[2]);
        assert!(m[3].starts_with("`SocketAddr` is the client's"), "{}", m[3]);
        assert!(m[4].starts_with("`Option<Traceparent>`"), "{}", m[4]);
        assert!(m[4].contains("drop `share_for`"), "{}", m[4]);
    }
}
