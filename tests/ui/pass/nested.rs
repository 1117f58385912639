//! Handlers declared inside a function body and a module register too.

mod routes {
    use emmer::route_read;

    #[route_read("in/module")]
    pub(crate) fn in_module() -> &'static str {
        "module"
    }
}

fn main() {
    use emmer::route_read;

    #[route_read("in/function")]
    fn in_function() -> &'static str {
        "function"
    }

    assert_eq!(in_function(), "function");
    assert_eq!(routes::in_module(), "module");
    let table = emmer::App::new().table().unwrap();
    let names: Vec<String> = table.routes().into_iter().map(|r| r.name).collect();
    assert!(names.contains(&"in_function".to_owned()), "{names:?}");
    assert!(names.contains(&"in_module".to_owned()), "{names:?}");
}
