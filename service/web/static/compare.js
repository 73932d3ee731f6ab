// What a comparison of two points did to each table and column: the diff's changes (GET /diff, renames
// as the log recorded them, never guessed) folded into marks: added, dropped, renamed (from what),
// changed.

const SEP = "\u0000";

/**
 * Marks from the changes taking point A to point B, with the base schema (A) for what was dropped.
 * Returns {table(name), column(table, name), dropped: {tables, columns: Map}, counts, lines}.
 */
export function compareMarks(changes, base) {
  const tables = new Map(); // current name -> {change, from}
  const columns = new Map(); // table SEP column (current names) -> {change, from, also}
  const origTable = new Map(); // current name -> name at A
  const origColumn = new Map(); // table SEP column -> column name at A
  const droppedTables = [];
  const droppedColumns = new Map(); // table at B -> [{name, type, nullable}]
  const lines = [];
  const tableAt = (t) => (origTable.has(t) ? origTable.get(t) : t);
  const columnAt = (t, c) => (origColumn.has(t + SEP + c) ? origColumn.get(t + SEP + c) : c);
  const touchTable = (t) => {
    if (!tables.has(t)) tables.set(t, { change: "changed" });
  };

  for (const ch of changes) {
    const t = ch.table;
    switch (ch.type) {
      case "table_created": {
        const before = tables.get(t);
        tables.set(t, before && before.change === "dropped" ? { change: "changed" } : { change: "added" });
        lines.push(`table ${t} added`);
        break;
      }
      case "table_dropped": {
        const before = tables.get(t);
        const at = tableAt(t);
        tables.delete(t);
        if (!before || before.change !== "added") {
          const old = base.tables && base.tables[at];
          if (old) droppedTables.push(old);
        }
        for (const key of [...columns.keys()]) if (key.startsWith(t + SEP)) columns.delete(key);
        lines.push(`table ${t} dropped`);
        break;
      }
      case "table_renamed": {
        const n = ch.new_name;
        const before = tables.get(t);
        tables.delete(t);
        tables.set(n, before && before.change === "added" ? before : { change: "renamed", from: tableAt(t) });
        origTable.set(n, tableAt(t));
        origTable.delete(t);
        for (const map of [columns, origColumn]) {
          for (const [key, value] of [...map.entries()]) {
            if (key.startsWith(t + SEP)) {
              map.delete(key);
              map.set(n + key.slice(t.length), value);
            }
          }
        }
        lines.push(`table ${t} renamed to ${n}`);
        break;
      }
      case "column_added": {
        const c = ch.column.name;
        const before = columns.get(t + SEP + c);
        columns.set(t + SEP + c, before && before.change === "dropped" ? { change: "changed" } : { change: "added" });
        touchTable(t);
        lines.push(`column ${t}.${c} added`);
        break;
      }
      case "column_dropped": {
        const c = ch.column;
        const key = t + SEP + c;
        const before = columns.get(key);
        const at = columnAt(t, c);
        columns.delete(key);
        origColumn.delete(key);
        if (!before || before.change !== "added") {
          const old = base.tables && base.tables[tableAt(t)];
          const col = old && old.columns.find((x) => x.name === at);
          if (col) {
            if (!droppedColumns.has(t)) droppedColumns.set(t, []);
            droppedColumns.get(t).push({ name: col.name, type: col.type, nullable: col.nullable, pk: false, fk: false });
          }
        }
        touchTable(t);
        lines.push(`column ${t}.${c} dropped`);
        break;
      }
      case "column_renamed": {
        const c = ch.column;
        const n = ch.new_name;
        const before = columns.get(t + SEP + c);
        columns.delete(t + SEP + c);
        let mark;
        if (before && before.change === "added") mark = before;
        else mark = { change: "renamed", from: columnAt(t, c), also: before && before.change === "changed" ? "changed" : before && before.also };
        columns.set(t + SEP + n, mark);
        origColumn.set(t + SEP + n, columnAt(t, c));
        origColumn.delete(t + SEP + c);
        touchTable(t);
        lines.push(`column ${t}.${c} renamed to ${n}`);
        break;
      }
      case "column_altered": {
        const c = ch.column;
        const before = columns.get(t + SEP + c);
        if (!before) columns.set(t + SEP + c, { change: "changed" });
        else if (before.change === "renamed") before.also = "changed";
        touchTable(t);
        lines.push(`column ${t}.${c} changed`);
        break;
      }
      case "index_created":
      case "index_dropped":
      case "constraint_added":
      case "constraint_dropped":
      case "primary_key_set":
      case "table_altered":
        if (t) {
          touchTable(t);
          lines.push(`table ${t}: ${ch.type.replace(/_/g, " ")}${ch.name ? " " + ch.name : ""}`);
        }
        break;
      default:
        break;
    }
  }
  // a dropped table that came back is not drawn twice
  const counts = { added: 0, dropped: droppedTables.length, renamed: 0, changed: 0 };
  for (const m of tables.values()) if (m.change in counts && m.change !== "dropped") counts[m.change]++;
  const columnCounts = { added: 0, dropped: 0, renamed: 0, changed: 0 };
  for (const m of columns.values()) if (m.change in columnCounts) columnCounts[m.change]++;
  for (const list of droppedColumns.values()) columnCounts.dropped += list.length;
  return {
    table: (name) => tables.get(name) || null,
    column: (table, name) => columns.get(table + SEP + name) || null,
    dropped: { tables: droppedTables, columns: droppedColumns },
    counts,
    columnCounts,
    lines,
  };
}
