/** viewer.html's stylesheet (inline in the page): a filter bar that stays put, one card per row. */
export const viewerCss = `
body { font: 14px/1.45 Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
header { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid #ddd; padding: 12px 24px 6px; }
h1 { font-size: 19px; margin: 0 0 2px; } .sub { color: #666; margin: 2px 0 8px; }
form { display: flex; flex-wrap: wrap; gap: 6px; }
input[type=search] { flex: 1 1 180px; padding: 5px 8px; font: inherit; }
select, button { font: inherit; padding: 4px 6px; max-width: 165px; }
main { max-width: 1180px; margin: 0 auto; padding: 10px 24px; }
.row { background: #fff; border: 1px solid #e1e4e8; border-left: 5px solid #999; border-radius: 5px; margin: 8px 0; }
.row.kept-strong { border-left-color: #2e7d32; } .row.kept-target { border-left-color: #1565c0; }
.row.iterated { border-left-color: #b26a00; } .row.dropped { border-left-color: #c62828; }
.row > summary { cursor: pointer; padding: 7px 12px; list-style: none; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; font-size: 12.5px; color: #555; }
.meta b { color: #222; } .id { font-family: monospace; }
.badge { border-radius: 3px; padding: 0 6px; color: #fff; font-weight: bold; }
.badge.kept-strong { background: #2e7d32; } .badge.kept-target { background: #1565c0; }
.badge.iterated { background: #b26a00; } .badge.dropped { background: #c62828; }
.chip { background: #eef1f5; border-radius: 3px; padding: 0 5px; }
.q { margin: 4px 0 0; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
.row[open] .q { -webkit-line-clamp: unset; white-space: pre-wrap; }
.detail { border-top: 1px solid #eee; padding: 8px 12px 12px; }
.answers { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
@media (max-width: 760px) { .answers { grid-template-columns: 1fr; } }
.answers h4 { margin: 6px 0 3px; font-size: 13px; } .answers .kept h4::after { content: ' (kept)'; color: #2e7d32; }
pre { white-space: pre-wrap; word-break: break-word; background: #f8f9fb; border: 1px solid #eee; padding: 6px 8px; margin: 0; font: 13px/1.4 ui-monospace, monospace; max-height: 320px; overflow: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #e1e4e8; padding: 3px 8px; text-align: left; } th { background: #f3f4f6; }
.why { margin: 6px 0; } ol { margin: 4px 0; padding-left: 22px; }
nav { text-align: center; padding: 6px 0 30px; } nav button { margin: 0 3px; }
.empty { color: #666; text-align: center; padding: 40px 0; }
`;
