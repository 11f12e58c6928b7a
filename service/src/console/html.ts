// HTML built from template literals in which every interpolated value is escaped,
// unless it is itself Html (a fragment built the same way). The console renders
// task data (Input, Output, names) only through this, so nothing a producer stores
// can become markup or script.

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => ESCAPES[char] as string);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === undefined || value === null || value === false) return "";
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0] as string;
  values.forEach((value, index) => (text += render(value) + (strings[index + 1] as string)));
  return new Html(text);
}

/** A path segment or query value, encoded for a URL inside an attribute (the template escapes it again). */
export function encode(value: string | bigint | number): string {
  return encodeURIComponent(String(value));
}
