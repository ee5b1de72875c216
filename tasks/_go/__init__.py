"""Go's own behaviour, where Ollama's answer depends on it (Go 1.26, paths as on Unix).

Ollama's Modelfile reader and `ollama create` lean on Go's standard library for what a
printable character is, how a path is cleaned and globbed, how a file's type is sniffed,
how numbers are read and written and how JSON is escaped. Each module here re-implements
one of those, so that doit_ollama.modelfile and doit_ollama.createrequest read as Ollama's
logic and nothing else. Private: nothing outside this package's two users imports it.

    isprint     strconv.IsPrint (Unicode 15.0.0)
    textdecode  unicode.BOMOverride(UTF8) + bufio.ReadRune: bytes to text
    filepath    path/filepath: Clean, Join, Abs, Dir, Rel, IsLocal (and os.Getwd)
    glob        filepath.Glob and its Match patterns
    sniff       net/http.DetectContentType
    strconv     strconv.ParseFloat (32 bits), ParseInt, ParseBool; float32 shortest digits
    json        encoding/json's text for the values a create request holds
    semver      golang.org/x/mod/semver.IsValid
    oserror     how Go words an OS error ("stat /x: no such file or directory")
"""
