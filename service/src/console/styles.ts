// The console's one stylesheet, served at /console.css (no inline styles: the
// Content-Security-Policy allows only this server's own stylesheet).
export const CONSOLE_CSS = `
:root { --fg: #1d2430; --muted: #5b6675; --line: #d9dee5; --bg: #f6f7f9; --card: #fff; --accent: #2456d3; --bad: #b42318; --ok: #157347; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 24px; align-items: center; padding: 10px 24px; background: #111827; color: #fff; }
header a { color: #dbe4ff; text-decoration: none; }
header strong { font-size: 16px; margin-right: 16px; }
header form { margin-left: auto; display: flex; gap: 6px; }
main { padding: 20px 24px; max-width: 1280px; }
h1 { font-size: 20px; margin: 0 0 16px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: var(--card); border: 1px solid var(--line); padding: 12px 16px; margin: 0; }
dl.fields dt { color: var(--muted); }
dl.fields dd { margin: 0; word-break: break-all; }
pre { background: var(--card); border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 360px; white-space: pre-wrap; word-break: break-all; margin: 0; }
.state { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; font-weight: 600; background: #e5e7eb; }
.state-SUCCESS { background: #dcfce7; color: var(--ok); }
.state-FAILURE { background: #fee2e2; color: var(--bad); }
.state-CANCEL { background: #f3f4f6; color: var(--muted); }
.state-PROCEEDING { background: #dbeafe; color: var(--accent); }
.state-WAITING, .state-PENDING { background: #fef9c3; color: var(--warn); }
.notice { background: #e8f0fe; border: 1px solid #b6c8f5; padding: 8px 12px; margin-bottom: 16px; }
.error { background: #fee2e2; border: 1px solid #f5b5b5; padding: 8px 12px; margin-bottom: 16px; }
.muted { color: var(--muted); }
.actions { display: flex; gap: 8px; margin: 12px 0; }
form.inline { display: inline; }
button { font: inherit; padding: 4px 12px; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
button.danger { color: var(--bad); border-color: #f5b5b5; }
input[type=text], input[type=password], input[type=number] { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 4px; }
.search { display: flex; gap: 8px; margin-bottom: 16px; flex-wrap: wrap; }
svg.chart { display: block; }
svg.chart .created { fill: #93b4f5; }
svg.chart .succeeded { fill: #86d19f; }
svg.chart .failed { fill: #f19a9a; }
.legend span { margin-right: 12px; font-size: 12px; }
.legend .created::before, .legend .succeeded::before, .legend .failed::before { content: ""; display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.legend .created::before { background: #93b4f5; } .legend .succeeded::before { background: #86d19f; } .legend .failed::before { background: #f19a9a; }
.login { max-width: 420px; margin: 80px auto; background: var(--card); border: 1px solid var(--line); padding: 24px; }
.login input { width: 100%; margin: 8px 0 12px; }
`;
