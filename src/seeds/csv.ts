/**
 * Delimited text (CSV, TSV) as in RFC 4180: a field in double quotes may hold the delimiter,
 * newlines and doubled quotes (""). Parsing is lenient where spreadsheets are sloppy (text after a
 * closing quote is kept, CRLF or LF line ends) and single-pass, so large files stay linear.
 */

export interface DelimitedRecord {
  /** 1-based line on which the record starts (a quoted newline makes a record span lines). */
  line: number;
  fields: string[];
  /** Set when the record could not be read completely (an unterminated quote). */
  error?: string;
}

export function parseDelimited(text: string, delimiter: ',' | '\t'): DelimitedRecord[] {
  const out: DelimitedRecord[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;

  // End of an unquoted stretch: the next delimiter or newline (a char loop, not two indexOf calls,
  // which would rescan the rest of the file for every field when one of them is absent).
  const stop = (from: number): number => {
    let j = from;
    while (j < n && text[j] !== delimiter && text[j] !== '\n') j++;
    return j;
  };

  while (i < n) {
    const record: DelimitedRecord = { line, fields: [] };
    for (;;) {
      let field: string;
      if (text[i] === '"') {
        const parts: string[] = [];
        i++;
        for (;;) {
          const q = text.indexOf('"', i);
          const chunk = text.slice(i, q === -1 ? n : q);
          parts.push(chunk);
          for (let k = chunk.indexOf('\n'); k !== -1; k = chunk.indexOf('\n', k + 1)) line++;
          if (q === -1) {
            record.error = `unterminated quoted field (the quote opened on line ${record.line} is never closed)`;
            i = n;
            break;
          }
          if (text[q + 1] === '"') {
            parts.push('"');
            i = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
        const end = stop(i);
        parts.push(text.slice(i, end));
        i = end;
        field = parts.join('').replace(/\r\n/g, '\n');
      } else {
        const end = stop(i);
        field = text.slice(i, end);
        i = end;
      }
      record.fields.push(field.endsWith('\r') ? field.slice(0, -1) : field);
      if (i >= n) break;
      if (text[i] === delimiter) {
        i++;
        if (i >= n) record.fields.push('');
        continue;
      }
      i++; // the newline
      line++;
      break;
    }
    out.push(record);
  }
  return out;
}

/** A record holding nothing (a blank line). */
export function isBlankRecord(r: DelimitedRecord): boolean {
  return !r.error && r.fields.length === 1 && r.fields[0]!.trim() === '';
}
