//! A file's readable text, by its kind: plain text and Markdown as they are, HTML without its
//! markup, JSON and CSV as their text, PDF (pdf-extract) and DOCX (its `word/document.xml`
//! read with zip and quick-xml). Anything else is refused as `unsupported_file`.

/// Why a file gave no text: OpenAI's `last_error.code`s.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtractError {
    /// A kind this server does not read.
    Unsupported(String),
    /// A kind it reads, but this file is not valid.
    Invalid(String),
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Unsupported(_) => "unsupported_file",
            ExtractError::Invalid(_) => "invalid_file",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ExtractError::Unsupported(m) | ExtractError::Invalid(m) => m,
        }
    }
}

/// The extension of `filename`, lowercased.
fn extension(filename: &str) -> String {
    filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default()
}

pub fn text_of(filename: &str, bytes: &[u8]) -> Result<String, ExtractError> {
    let utf8 = || {
        std::str::from_utf8(bytes)
            .map_err(|_| ExtractError::Invalid(format!("{filename} is not valid UTF-8 text")))
    };
    match extension(filename).as_str() {
        "txt" | "md" | "markdown" | "text" | "rst" | "log" | "csv" | "tsv" => {
            Ok(utf8()?.to_owned())
        }
        "json" => {
            let value: serde_json::Value = serde_json::from_str(utf8()?)
                .map_err(|e| ExtractError::Invalid(format!("{filename} is not valid JSON: {e}")))?;
            let mut out = String::new();
            json_text(&value, &mut out);
            Ok(out)
        }
        "html" | "htm" => Ok(html_text(utf8()?)),
        "pdf" => pdf_text(filename, bytes),
        "docx" => docx_text(bytes)
            .map_err(|e| ExtractError::Invalid(format!("{filename} is not a readable DOCX: {e}"))),
        "" => Err(ExtractError::Unsupported(format!(
            "{filename} has no extension to tell its kind"
        ))),
        other => Err(ExtractError::Unsupported(format!(
            "files of kind .{other} are not supported (text, Markdown, HTML, JSON, CSV, PDF, DOCX)"
        ))),
    }
}

/// A PDF's text. The parser panics on some malformed files: that is an invalid file too.
fn pdf_text(filename: &str, bytes: &[u8]) -> Result<String, ExtractError> {
    let invalid =
        |why: String| ExtractError::Invalid(format!("{filename} is not a readable PDF: {why}"));
    match std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes)) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(err)) => Err(invalid(err.to_string())),
        Err(_) => Err(invalid("the parser gave up".into())),
    }
}

/// The text of a DOCX's paragraphs (`w:p`), runs' text (`w:t`), tabs and breaks.
fn docx_text(bytes: &[u8]) -> Result<String, String> {
    use quick_xml::events::Event;
    use std::io::Read;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut xml = String::new();
    archive
        .by_name("word/document.xml")
        .map_err(|e| e.to_string())?
        .read_to_string(&mut xml)
        .map_err(|e| e.to_string())?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) if e.name().as_ref() == b"w:t" => in_text = true,
            Event::End(e) if e.name().as_ref() == b"w:t" => in_text = false,
            Event::End(e) if e.name().as_ref() == b"w:p" => out.push('\n'),
            Event::Empty(e) if e.name().as_ref() == b"w:tab" => out.push('\t'),
            Event::Empty(e) if e.name().as_ref() == b"w:br" => out.push('\n'),
            Event::Text(t) if in_text => out.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) if in_text => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let resolved = quick_xml::escape::resolve_predefined_entity(&name).unwrap_or("");
                out.push_str(resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// A JSON document's strings and numbers, one per line, with their keys.
fn json_text(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if v.is_object() || v.is_array() {
                    out.push_str(key);
                    out.push_str(":\n");
                    json_text(v, out);
                } else {
                    out.push_str(key);
                    out.push_str(": ");
                    json_text(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_text(v, out)),
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Null => out.push('\n'),
        other => {
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

/// The text of an HTML page's body, scripts and styles left out.
fn html_text(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let mut out = String::new();
    for node in doc.root_element().descendants() {
        if let Some(text) = node.value().as_text() {
            let skipped = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|e| matches!(e.name(), "script" | "style" | "noscript" | "head"))
            });
            let text = text.trim();
            if !skipped && !text.is_empty() {
                out.push_str(text);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_or_refused() {
        assert_eq!(text_of("a.md", b"# Hi").unwrap(), "# Hi");
        let html = b"<html><head><title>T</title><style>p{}</style></head><body><p>Hello</p><script>x()</script><p>there</p></body></html>";
        assert_eq!(text_of("a.html", html).unwrap(), "Hello\nthere\n");
        assert_eq!(
            text_of("a.json", br#"{"name": "Ada", "tags": ["x", 1]}"#).unwrap(),
            "name: Ada\ntags:\nx\n1\n"
        );
        assert_eq!(
            text_of("a.exe", b"MZ").unwrap_err().code(),
            "unsupported_file"
        );
        assert_eq!(
            text_of("a.txt", &[0xff, 0xfe]).unwrap_err().code(),
            "invalid_file"
        );
        assert_eq!(text_of("a.json", b"{").unwrap_err().code(), "invalid_file");
        assert_eq!(
            text_of("a.pdf", b"%PDF-1.4 garbage").unwrap_err().code(),
            "invalid_file"
        );
        assert_eq!(
            text_of("a.docx", b"PK not a zip").unwrap_err().code(),
            "invalid_file"
        );
    }

    /// A one-page PDF that shows `text` in Helvetica, with a correct cross-reference table.
    pub fn pdf_with(text: &str) -> Vec<u8> {
        let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        ];
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).bytes());
        }
        let xref = pdf.len();
        pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
        for offset in offsets {
            pdf.extend(format!("{offset:010} 00000 n \n").bytes());
        }
        pdf.extend(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .bytes(),
        );
        pdf
    }

    /// A DOCX holding two paragraphs.
    pub fn docx_with(first: &str, second: &str) -> Vec<u8> {
        use std::io::Write;
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{first}</w:t></w:r></w:p><w:p><w:r><w:t xml:space="preserve">{second} &amp; more</w:t><w:tab/><w:t>end</w:t></w:r></w:p></w:body></w:document>"#
        );
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(xml.as_bytes()).unwrap();
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn pdf_and_docx_give_their_text() {
        let text = text_of("a.pdf", &pdf_with("Cats purr in the sun")).unwrap();
        assert!(text.contains("Cats purr in the sun"), "{text:?}");
        let text = text_of("a.docx", &docx_with("First paragraph", "Second")).unwrap();
        assert_eq!(text, "First paragraph\nSecond & more\tend\n");
    }
}
