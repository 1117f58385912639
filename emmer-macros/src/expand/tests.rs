//! The expansions are parsed back with syn and checked by structure, or
//! compared with the expected code after both went through syn and quote,
//! so that they do not depend on how tokens are spaced when printed.

use super::*;
use crate::route::expand;
use quote::ToTokens;
use syn::parse::{Parse, Parser};
use syn::{Block, Expr, ExprStruct, Item, ItemConst, Lit, Stmt, UnOp};

/// An accepted handler's expansion, parsed back.
struct Expansion {
    /// The function, as written.
    func: ItemFn,
    /// The `const _` that registers the route.
    route: ItemConst,
    /// `__emmer_prepare`, inside the `const _`.
    prepare: ItemFn,
    /// The `RouteDef` handed to `inventory::submit!`.
    def: ExprStruct,
}

fn expansion(kind: Kind, attr: TokenStream, item: TokenStream) -> Expansion {
    let out = expand(kind, attr, item);
    let file: syn::File = syn::parse2(out.clone()).expect("the expansion parses as items");
    let [Item::Fn(func), Item::Const(route)] = &file.items[..] else {
        panic!("expected the function, then a const:\n{out}");
    };
    assert_eq!(route.ident, "_");
    let Expr::Block(block) = &*route.expr else {
        panic!("expected a block in the const:\n{out}");
    };
    let [Stmt::Item(Item::Fn(prepare)), Stmt::Macro(submit)] = &block.block.stmts[..] else {
        panic!("expected __emmer_prepare, then inventory::submit!:\n{out}");
    };
    assert_eq!(prepare.sig.ident, "__emmer_prepare");
    assert_eq!(
        path(&submit.mac.path),
        "::emmer::__private::inventory::submit"
    );
    let def: ExprStruct = submit.mac.parse_body().expect("submit! holds a struct");
    assert_eq!(path(&def.path), "::emmer::__private::RouteDef");
    Expansion {
        func: func.clone(),
        route: route.clone(),
        prepare: prepare.clone(),
        def,
    }
}

/// A path's segments, without spaces or generic arguments.
fn path(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let lead = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{lead}{}", segments.join("::"))
}

/// Parsed as a `T` and printed back: the form both sides of a comparison
/// take.
fn norm<T: Parse + ToTokens>(tokens: TokenStream) -> String {
    syn::parse2::<T>(tokens)
        .unwrap()
        .to_token_stream()
        .to_string()
}

/// Statements, each printed back.
fn stmts(block: &Block) -> Vec<String> {
    let stmts = block.stmts.iter();
    stmts.map(|s| s.to_token_stream().to_string()).collect()
}

/// The expected statements, each parsed and printed back.
fn expected(tokens: TokenStream) -> Vec<String> {
    let stmts = Block::parse_within.parse2(tokens).unwrap();
    stmts
        .iter()
        .map(|s| s.to_token_stream().to_string())
        .collect()
}

/// The field `name` of a struct expression.
fn field<'a>(def: &'a ExprStruct, name: &str) -> &'a Expr {
    let mut fields = def.fields.iter();
    let field = fields.find(|f| f.member.to_token_stream().to_string() == name);
    &field.unwrap_or_else(|| panic!("no field `{name}`")).expr
}

/// An integer literal, maybe negated.
fn int(expr: &Expr) -> i64 {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(i) => i.base10_parse().unwrap(),
            lit => panic!("not an integer: {}", lit.to_token_stream()),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => -int(&u.expr),
        e => panic!("not an integer: {}", e.to_token_stream()),
    }
}

/// The `__private` helper `__emmer_prepare` hands the handler to, and
/// what it hands: the last expression is `Ok(::emmer::__private::x(…))`.
fn helper(prepare: &ItemFn) -> (String, &Expr) {
    let Some(Stmt::Expr(Expr::Call(ok), None)) = prepare.block.stmts.last() else {
        panic!("no final call: {}", prepare.to_token_stream());
    };
    let ok_path = norm::<Expr>(quote!(::core::result::Result::Ok));
    assert_eq!(ok.func.to_token_stream().to_string(), ok_path);
    assert_eq!(ok.args.len(), 1);
    let Expr::Call(call) = &ok.args[0] else {
        panic!("Ok does not hold a call: {}", prepare.to_token_stream());
    };
    let Expr::Path(helper) = &*call.func else {
        panic!("not a helper call: {}", call.to_token_stream());
    };
    assert_eq!(call.args.len(), 1);
    let helper = path(&helper.path);
    let name = helper.strip_prefix("::emmer::__private::");
    let name = name.unwrap_or_else(|| panic!("not a __private helper: {helper}"));
    (name.to_owned(), &call.args[0])
}

/// A `move` closure's parameters, each printed back, and its body.
fn closure(expr: &Expr) -> (Vec<String>, &Expr) {
    let Expr::Closure(c) = expr else {
        panic!("not a closure: {}", expr.to_token_stream());
    };
    assert!(
        c.capture.is_some(),
        "not a move closure: {}",
        expr.to_token_stream()
    );
    let inputs = c.inputs.iter().map(|p| p.to_token_stream().to_string());
    (inputs.collect(), &c.body)
}

/// The expected parameters of a closure, each parsed and printed back.
fn closure_inputs(tokens: TokenStream) -> Vec<String> {
    let c: syn::ExprClosure = syn::parse2(quote!(move |#tokens| ())).unwrap();
    closure(&Expr::Closure(c)).0
}

/// The statements of a block expression, or of an `async move` block.
fn body(expr: &Expr) -> Vec<String> {
    match expr {
        Expr::Block(b) => stmts(&b.block),
        Expr::Async(a) if a.capture.is_some() => stmts(&a.block),
        e => panic!(
            "not a block or an async move block: {}",
            e.to_token_stream()
        ),
    }
}

#[test]
fn expansion_of_a_read_route() {
    let item = quote!(
        fn pxe(
            client_host: IpAddr,
            mac: String,
            unit: Option<u32>,
            st: State<Arc<X>>,
            req: &Request,
        ) -> String {
            String::new()
        }
    );
    let pattern = r"^(?P<mac>[0-9a-f]+)(?:/(?P<unit>\d+))?$";
    let x = expansion(Kind::Read, quote!(#pattern, priority = -3), item.clone());
    assert_eq!(x.func.to_token_stream().to_string(), norm::<ItemFn>(item));
    assert_eq!(
        x.prepare.to_token_stream().to_string(),
        norm::<ItemFn>(quote! {
            fn __emmer_prepare(
                __req: &::emmer::Request,
            ) -> ::core::result::Result<::emmer::__private::ReadCall, ::emmer::__private::NoMatch> {
                let __emmer_arg1 = ::emmer::__private::capture::<String>(__req, "mac")?;
                let __emmer_arg2 = ::emmer::__private::capture_opt::<u32>(__req, "unit")?;
                let __emmer_arg3 = match ::emmer::__private::extract::<State<Arc<X>>>(__req) {
                    ::core::result::Result::Ok(v) => v,
                    ::core::result::Result::Err(e) => {
                        return ::core::result::Result::Ok(::emmer::__private::reject(e));
                    }
                };
                let __req = ::core::clone::Clone::clone(__req);
                ::core::result::Result::Ok(::emmer::__private::read_blocking(move || {
                    let __emmer_arg0 = <IpAddr as ::emmer::__private::FromClientHost>::from_client_host(__req.client_host());
                    pxe(__emmer_arg0, __emmer_arg1, __emmer_arg2, __emmer_arg3, &__req)
                }))
            }
        })
    );
    assert_eq!(helper(&x.prepare).0, "read_blocking");
    let def = &x.def;
    let handler = field(def, "handler").to_token_stream().to_string();
    assert_eq!(
        handler,
        norm::<Expr>(quote!(::emmer::__private::RouteFn::Read(__emmer_prepare)))
    );
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(lit), ..
    }) = field(def, "pattern")
    else {
        panic!("the pattern is not a string literal");
    };
    assert_eq!(lit.value(), pattern);
    assert_eq!(int(field(def, "priority")), -3);
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(name),
        ..
    }) = field(def, "name")
    else {
        panic!("the name is not a string literal");
    };
    assert_eq!(name.value(), "pxe");
    let location = field(def, "location").to_token_stream().to_string();
    let expected_location = quote!(::emmer::__private::Location::new(
        ::core::file!(),
        ::core::line!(),
        ::core::column!()
    ));
    assert_eq!(location, norm::<Expr>(expected_location));
    let Expr::Struct(limits) = field(def, "limits") else {
        panic!("limits is not a struct");
    };
    assert_eq!(path(&limits.path), "::emmer::__private::RouteLimits");
    let none = norm::<Expr>(quote!(::core::option::Option::None));
    for limit in ["max_blksize", "max_windowsize", "max_upload"] {
        assert_eq!(field(limits, limit).to_token_stream().to_string(), none);
    }
    let all = norm::<Expr>(quote!(::emmer::route::Transports::ALL));
    assert_eq!(field(def, "transports").to_token_stream().to_string(), all);
}

#[test]
fn expansion_of_an_async_read_route() {
    let x = expansion(
        Kind::Read,
        quote!("(?P<tag>[a-z]+)/(?P<opt>[0-9]+)?"),
        quote!(
            async fn f(tag: &str, opt: Option<&str>, filename: &str) -> Vec<u8> {
                Vec::new()
            }
        ),
    );
    // A borrowed capture is checked before the handler is prepared.
    let prepare = stmts(&x.prepare.block);
    assert_eq!(
        prepare[..prepare.len() - 1],
        expected(quote! {
            if ::emmer::Request::capture(__req, "tag").is_none() {
                return ::core::result::Result::Err(::emmer::__private::NoMatch);
            }
            let __req = ::core::clone::Clone::clone(__req);
        })
    );
    let (called, run) = helper(&x.prepare);
    assert_eq!(called, "read_async");
    assert_eq!(
        body(run),
        expected(quote! {
            let __emmer_arg0: &str = ::core::option::Option::unwrap_or(
                ::emmer::Request::capture(&__req, "tag"),
                "",
            );
            let __emmer_arg1: Option<&str> = ::emmer::Request::capture(&__req, "opt");
            let __emmer_arg2 = <&str as ::emmer::__private::FromFilename<'_>>::from_filename(__req.filename());
            f(__emmer_arg0, __emmer_arg1, __emmer_arg2).await
        })
    );
}

#[test]
fn expansion_of_write_routes() {
    let x = expansion(
        Kind::Write,
        quote!(".*"),
        quote!(
            async fn up(filename: String, data: Vec<u8>) {}
        ),
    );
    let handler = field(&x.def, "handler").to_token_stream().to_string();
    assert_eq!(
        handler,
        norm::<Expr>(quote!(::emmer::__private::RouteFn::Write(__emmer_prepare)))
    );
    let (called, run) = helper(&x.prepare);
    assert_eq!(called, "write_async");
    let (inputs, run) = closure(run);
    assert_eq!(inputs, closure_inputs(quote!(__data: ::std::vec::Vec<u8>)));
    assert_eq!(
        body(run),
        expected(quote! {
            let __emmer_arg1 = <Vec<u8> as ::emmer::__private::FromBody>::from_body(__data)?;
            ::core::result::Result::Ok(async move {
                let __emmer_arg0 = <String as ::emmer::__private::FromFilename<'_>>::from_filename(__req.filename());
                up(__emmer_arg0, __emmer_arg1).await
            })
        })
    );

    let x = expansion(
        Kind::Write,
        quote!(".*"),
        quote!(
            fn up() -> bool {
                true
            }
        ),
    );
    // Nothing is taken from the request in the closure: no copy of it.
    assert_eq!(
        x.prepare.block.stmts.len(),
        1,
        "{:?}",
        stmts(&x.prepare.block)
    );
    let (called, run) = helper(&x.prepare);
    assert_eq!(called, "write_blocking");
    let (inputs, run) = closure(run);
    assert_eq!(inputs, closure_inputs(quote!(__data: ::std::vec::Vec<u8>)));
    assert_eq!(
        body(run),
        expected(quote! {
            let _ = __data;
            ::core::result::Result::Ok(up())
        })
    );
}

#[test]
fn expansion_of_upload_routes() {
    let x = expansion(
        Kind::Write,
        quote!(".*"),
        quote!(
            fn f(u: Upload) {}
        ),
    );
    let (called, run) = helper(&x.prepare);
    assert_eq!(called, "write_streaming_blocking");
    let (inputs, run) = closure(run);
    assert_eq!(inputs, closure_inputs(quote!(__upload: ::emmer::Upload)));
    assert_eq!(body(run), expected(quote!(f(__upload))));

    let x = expansion(
        Kind::Write,
        quote!(".*"),
        quote!(
            async fn f(filename: String, up: Upload) {}
        ),
    );
    let (called, run) = helper(&x.prepare);
    assert_eq!(called, "write_streaming");
    let (inputs, run) = closure(run);
    assert_eq!(inputs, closure_inputs(quote!(__upload: ::emmer::Upload)));
    assert_eq!(
        body(run),
        expected(quote! {
            let __emmer_arg0 = <String as ::emmer::__private::FromFilename<'_>>::from_filename(__req.filename());
            f(__emmer_arg0, __upload).await
        })
    );
}

#[test]
fn limits_are_typed_for_the_route() {
    let x = expansion(
        Kind::Write,
        quote!(
            "x",
            max_blksize = 1428,
            max_windowsize = 16,
            max_upload = 1_000_000
        ),
        quote!(
            fn f() {}
        ),
    );
    let Expr::Struct(limits) = field(&x.def, "limits") else {
        panic!("limits is not a struct");
    };
    for (limit, value) in [
        (
            "max_blksize",
            quote!(::core::option::Option::Some(1428 as u16)),
        ),
        (
            "max_windowsize",
            quote!(::core::option::Option::Some(16 as u16)),
        ),
        (
            "max_upload",
            quote!(::core::option::Option::Some(1000000 as u64)),
        ),
    ] {
        let got = field(limits, limit).to_token_stream().to_string();
        assert_eq!(got, norm::<Expr>(value), "{limit}");
    }
}

#[test]
fn cfg_applies_to_the_route() {
    let x = expansion(
        Kind::Read,
        quote!("x"),
        quote!(
            #[cfg(test)]
            #[doc = "d"]
            fn f() -> &'static str {
                ""
            }
        ),
    );
    let attrs = |attrs: &[syn::Attribute]| -> Vec<String> {
        attrs
            .iter()
            .map(|a| a.to_token_stream().to_string())
            .collect()
    };
    let parse = |tokens| attrs(&syn::Attribute::parse_outer.parse2(tokens).unwrap());
    assert_eq!(attrs(&x.route.attrs), parse(quote!(#[cfg(test)])));
    assert_eq!(
        attrs(&x.func.attrs),
        parse(quote!(#[cfg(test)] #[doc = "d"]))
    );
}

#[test]
fn transports_name_the_set() {
    for (given, set) in [
        ("tftp", quote!(TFTP)),
        ("http", quote!(HTTP)),
        ("tftp,http", quote!(ALL)),
    ] {
        let x = expansion(
            Kind::Read,
            quote!("x", transports = #given),
            quote!(
                fn f() -> &'static str {
                    ""
                }
            ),
        );
        let got = field(&x.def, "transports").to_token_stream().to_string();
        let want = norm::<Expr>(quote!(::emmer::route::Transports::#set));
        assert_eq!(got, want, "{given}");
    }
}
