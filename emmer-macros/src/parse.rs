//! The attribute's arguments: the pattern literal, then the optional
//! `priority`, per-route limits (`max_blksize`, `max_windowsize`,
//! `max_upload`), `share_for` (see `share`) and `transports`, each checked
//! on the token at fault.

use proc_macro2::TokenTree;
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::{Ident, LitInt, LitStr, Token};

use crate::route::Kind;
use crate::share::{ShareFor, parse_share_for};

/// The attribute's arguments.
pub(crate) struct RouteArgs {
    pub(crate) pattern: LitStr,
    pub(crate) priority: i32,
    /// `max_blksize`, `max_windowsize`, `max_upload`, when given.
    pub(crate) limits: [Option<u64>; 3],
    /// `share_for`, when given.
    pub(crate) share_for: Option<ShareFor>,
    /// `transports = "tftp"`, `"http"` or `"tftp,http"`: which it serves
    /// (both when not given).
    pub(crate) transports: Transports,
}

/// The transports a route serves, as `transports = "…"` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transports {
    pub(crate) tftp: bool,
    pub(crate) http: bool,
}

impl Transports {
    const ALL: Transports = Transports {
        tftp: true,
        http: true,
    };
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

pub(crate) fn parse_args(input: ParseStream<'_>, kind: Kind) -> syn::Result<RouteArgs> {
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
    let mut share_for = None;
    let mut transports: Option<Transports> = None;
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
        if key == "share_for" {
            if share_for.is_some() {
                return Err(syn::Error::new(key.span(), "`share_for` is given twice"));
            }
            share_for = Some(parse_share_for(input, &key, kind)?);
            continue;
        }
        if key == "transports" {
            if transports.is_some() {
                return Err(syn::Error::new(key.span(), "`transports` is given twice"));
            }
            input.parse::<Token![=]>()?;
            transports = Some(parse_transports(input)?);
            continue;
        }
        let Some(i) = LIMITS.iter().position(|(name, ..)| key == name) else {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown route option `{key}`: the options are `priority = <integer>`, `max_blksize = <8..=65464>`, `max_windowsize = <1..=65535>`, `max_upload = <bytes>`, `share_for = \"2s\"` (read routes) and `transports = \"tftp\" | \"http\"`, as in #[{attr}(\"…\", priority = 10)]"
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
        share_for,
        transports: transports.unwrap_or(Transports::ALL),
    })
}

/// A string literal naming transports, comma-separated: `"tftp"`, `"http"`
/// or `"tftp,http"`.
fn parse_transports(input: ParseStream<'_>) -> syn::Result<Transports> {
    const HELP: &str = "`transports` must be a string literal naming the transports the route serves: \"tftp\", \"http\" or \"tftp,http\" (the default)";
    if !input.peek(LitStr) {
        return Err(match input.parse::<TokenTree>() {
            Ok(token) => syn::Error::new(token.span(), HELP),
            Err(_) => input.error(HELP),
        });
    }
    let lit: LitStr = input.parse()?;
    let mut set = Transports {
        tftp: false,
        http: false,
    };
    for name in lit.value().split(',').map(str::trim) {
        match name.to_ascii_lowercase().as_str() {
            "tftp" => set.tftp = true,
            "http" => set.http = true,
            _ => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!("{name:?} is not a transport: {HELP}"),
                ));
            }
        }
    }
    Ok(set)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;
    use syn::parse::Parser;

    fn args(tokens: TokenStream, kind: Kind) -> syn::Result<RouteArgs> {
        (|input: ParseStream<'_>| parse_args(input, kind)).parse2(tokens)
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
    fn parses_transports() {
        let t = |tokens: TokenStream| args(tokens, Kind::Read).unwrap().transports;
        assert_eq!(t(quote!("a")), Transports::ALL);
        let tftp = Transports {
            tftp: true,
            http: false,
        };
        assert_eq!(t(quote!("a", transports = "tftp")), tftp);
        assert_eq!(t(quote!("a", transports = "TFTP", priority = 2)), tftp);
        assert!(!t(quote!("a", transports = "http")).tftp);
        assert_eq!(t(quote!("a", transports = "http, tftp")), Transports::ALL);
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
            (quote!("a", transports = tftp), "must be a string literal"),
            (
                quote!("a", transports = "ftp"),
                "\"ftp\" is not a transport",
            ),
            (quote!("a", transports = ""), "\"\" is not a transport"),
            (
                quote!("a", transports = "tftp", transports = "http"),
                "given twice",
            ),
        ];
        for (tokens, expected) in cases {
            let text = tokens.to_string();
            let e = args(tokens, Kind::Read).expect_err(&text);
            assert!(e.to_string().contains(expected), "{text}: {e}");
        }
    }
}
