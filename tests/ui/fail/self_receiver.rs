use emmer::route_read;

struct Server;

impl Server {
    #[route_read(".*")]
    fn everything(&self, filename: &str) -> String {
        filename.to_owned()
    }
}

fn main() {}
