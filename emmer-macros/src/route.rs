//! `#[route_read]` / `#[route_write]`: parse the attribute (`parse`), check
//! the function (`check`), expand to the function plus a registered route
//! (`expand`). The pieces they share, which macro it is and the error
//! collector, live here.
//!
//! Every mistake the macro can see becomes a `syn::Error` on the token at
//! fault; all of them are reported at once, next to the untouched function so
//! that nothing else breaks. What only the compiler can check (trait bounds
//! on parameter and return types) is generated with the user's spans, so
//! those errors point at the parameter too.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;
use syn::parse::{ParseStream, Parser};

use crate::check::{capture_names, check_signature};
use crate::expand::generate;
use crate::parse::parse_args;

/// Which macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
}

impl Kind {
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Read => "route_read",
            Kind::Write => "route_write",
        }
    }
}

/// Collects errors to report them all at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
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
    if let (Ok(args), Ok(params)) = (&args, &params) {
        if args.share_for.is_some() {
            if let Err(e) = crate::share::check_params(&func.sig, params) {
                errors.push(e);
            }
        }
    }
    errors.finish()?;
    let (Ok(args), Ok(params)) = (args, params) else {
        unreachable!("errors were reported above");
    };
    Ok(generate(kind, &args, func, &params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::{Item, LitStr};

    /// The expansion parsed back: the item as written, then the
    /// `compile_error!` message, and nothing else (no route).
    fn item_and_error(out: TokenStream) -> (Item, String) {
        let file: syn::File = syn::parse2(out.clone()).expect("the expansion parses as items");
        let [item, Item::Macro(error)] = &file.items[..] else {
            panic!("expected the item, then compile_error!:\n{out}");
        };
        let path = error.mac.path.segments.last().map(|s| s.ident.to_string());
        assert_eq!(path.as_deref(), Some("compile_error"), "{out}");
        let message: LitStr = error.mac.parse_body().expect("a message");
        (item.clone(), message.value())
    }

    #[test]
    fn errors_keep_the_item() {
        let (item, message) = item_and_error(expand(
            Kind::Read,
            quote!("a("),
            quote!(
                fn f() -> &'static str {
                    ""
                }
            ),
        ));
        assert!(matches!(&item, Item::Fn(f) if f.sig.ident == "f"));
        assert!(
            message.starts_with("route pattern is not a valid regex"),
            "{message}"
        );

        let (item, message) = item_and_error(expand(
            Kind::Read,
            quote!("a"),
            quote!(
                struct S;
            ),
        ));
        assert!(matches!(&item, Item::Struct(s) if s.ident == "S"));
        assert!(message.contains("goes on a function"), "{message}");
    }
}
