//! Flume's BlobHandler for the http source (`org.apache.flume.sink.solr.morphline.BlobHandler`):
//! a request's whole body is one event, whose headers are the request's query parameters and
//! its `Content-Type` (e.g. `curl --data-binary @file 'http://host:port/?name=file.avro'`).

use crate::event::Event;

/// The event for a request to `path` (with its query string) with `content_type` and `body`.
/// A parameter given twice keeps its first value (Java's `getParameter`).
pub fn event(path: &str, content_type: Option<&str>, body: Vec<u8>) -> Event {
    let mut event = Event::new(body);
    if let Some(ct) = content_type {
        event
            .headers
            .insert("Content-Type".to_owned(), ct.to_owned());
    }
    if let Some((_, query)) = path.split_once('?') {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            event
                .headers
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::event;

    #[test]
    fn query_parameters_and_content_type_become_headers() {
        let e = event(
            "/upload?resourceName=a%20b.avro&x=1&x=2&flag&plus=c+d",
            Some("application/octet-stream"),
            b"\x00\x01binary".to_vec(),
        );
        assert_eq!(&e.body[..], b"\x00\x01binary");
        let get = |k: &str| e.headers.get(k);
        assert_eq!(get("resourceName"), Some("a b.avro"));
        assert_eq!(get("x"), Some("1"));
        assert_eq!(get("flag"), Some(""));
        assert_eq!(get("plus"), Some("c d"));
        assert_eq!(get("Content-Type"), Some("application/octet-stream"));
        assert_eq!(e.headers.len(), 5);

        let e = event("/", None, Vec::new());
        assert!(e.headers.is_empty() && e.body.is_empty());
    }
}
