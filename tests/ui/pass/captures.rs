use emmer::route_read;

#[route_read(r"^pxelinux\.cfg/01-(?P<mac>[0-9a-f-]{17})(?:\.(?P<unit>[0-9]+))?$")]
fn pxe_config(mac: String, unit: Option<u32>) -> String {
    format!("# {mac} {unit:?}\n")
}

#[route_read(r"^(?P<dir>[a-z]+)/(?P<file>[a-z]+)(?:\.(?P<ext>[a-z]+))?$")]
fn borrowed(dir: &str, file: std::path::PathBuf, ext: Option<&str>) -> Option<String> {
    Some(format!("{dir} {} {ext:?}", file.display()))
}

// A reserved name wins over a group of the same name; `mut` is fine.
#[route_read(r"^(?P<filename>.+)\.txt$")]
fn reserved_wins(mut filename: String) -> String {
    filename.push('!');
    filename
}

#[route_read(r"^(?P<type>[0-9])\.bin$")]
fn raw_ident(r#type: u8) -> Vec<u8> {
    vec![r#type]
}

fn main() {
    assert_eq!(
        pxe_config("01-02-03-04-05-06".into(), Some(3)),
        "# 01-02-03-04-05-06 Some(3)\n"
    );
}
