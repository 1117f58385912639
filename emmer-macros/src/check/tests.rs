use super::*;
use syn::ItemFn;

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
fn invalid_regex_is_reported() {
    let e = capture_names(&LitStr::new("a(b", Span::call_site())).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("route pattern is not a valid regex: ")
    );
}

#[test]
fn a_leading_underscore_binds_the_same_name() {
    let b = bindings(
        Kind::Write,
        "(?P<mac>.*)",
        quote!(
            fn f(
                _client_host: IpAddr,
                _client_port: u16,
                _filename: &str,
                _mode: Mode,
                _mac: String,
                _data: Vec<u8>,
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
            Binding::Capture {
                name: "mac".into(),
                optional: false,
                borrowed: false
            },
            Binding::Reserved(Reserved::Data),
        ]
    );
    // A group that is itself named with an underscore keeps it.
    let b = bindings(
        Kind::Read,
        "(?P<_x>.*)(?P<x>.*)",
        quote!(
            fn f(_x: u8) {}
        ),
    )
    .unwrap();
    assert_eq!(
        b,
        [Binding::Capture {
            name: "_x".into(),
            optional: false,
            borrowed: false
        }]
    );
    // `_data` on a read route is the same mistake as `data`.
    assert!(
        bindings(
            Kind::Read,
            ".*",
            quote!(
                fn f(_data: Vec<u8>) {}
            )
        )
        .is_err()
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
            fn f(client_host: IpAddr, client_port: u16, filename: &str, mode: Mode, data: Vec<u8>) {
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
        quote!(Option<u32>),
        quote!(Option<&str>),
        quote!(PathBuf),
        quote!(f32),
    ] {
        let ty: Type = syn::parse2(ty).unwrap();
        assert!(is_plain_value(&ty), "{}", quote!(#ty));
    }
    for ty in [
        quote!(State<u32>),
        // An extractor may come as an Option (Option<Traceparent>).
        quote!(Option<Traceparent>),
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
