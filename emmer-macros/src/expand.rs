//! The code a checked handler expands to: a `const _` holding
//! `__emmer_prepare`, which binds the parameters from a request and hands
//! the call to the `__private` helper for its kind (read or write, plain or
//! `async`, whole or streamed body), and the `RouteDef` submitted to the
//! registry, behind the function's `#[cfg]`s.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::check::{Binding, Param, Reserved, option_inner};
use crate::parse::RouteArgs;
use crate::route::Kind;

/// The route registration for a checked handler.
pub(crate) fn generate(
    kind: Kind,
    args: &RouteArgs,
    func: &ItemFn,
    params: &[Param<'_>],
) -> TokenStream {
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
    let mut needs = Vec::new();
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
                // What the extractor needs from the app (a registered
                // `State<T>`), checked when the route table is built. Asked
                // of types named `State` only, so that a type that is no
                // extractor at all gets one error (from `extract`), not two.
                if crate::check::is_state(ty) {
                    needs.push(quote_spanned!(span=> <#ty as ::emmer::FromRequest>::__needs));
                }
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

    // The kind is said once, by the call type and the `RouteFn` variant.
    let (kind_variant, call_type) = match kind {
        Kind::Read => (quote!(Read), quote!(ReadCall)),
        Kind::Write => (quote!(Write), quote!(WriteCall)),
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
    let sharing = crate::share::sharing(args.share_for);
    let transports = match (args.transports.tftp, args.transports.http) {
        (true, false) => quote!(TFTP),
        (false, true) => quote!(HTTP),
        _ => quote!(ALL),
    };
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
            ) -> ::core::result::Result<::emmer::__private::#call_type, ::emmer::__private::NoMatch> {
                #(#captures)*
                #(#extracts)*
                #clone_request
                ::core::result::Result::Ok(#run)
            }
            ::emmer::__private::inventory::submit! {
                ::emmer::__private::RouteDef {
                    pattern: #pattern,
                    priority: #priority,
                    limits: ::emmer::__private::RouteLimits {
                        max_blksize: #max_blksize,
                        max_windowsize: #max_windowsize,
                        max_upload: #max_upload,
                    },
                    sharing: #sharing,
                    transports: ::emmer::route::Transports::#transports,
                    name: #name,
                    location: #location,
                    module: ::core::module_path!(),
                    needs: &[#(#needs),*],
                    handler: ::emmer::__private::RouteFn::#kind_variant(__emmer_prepare),
                }
            }
        };
    }
}

#[cfg(test)]
mod tests;
