package pgonline

// mergeFunction is packed.Merge in PL/pgSQL, to the byte
// (TestMergeFunctionIsPackedMerge), as the Redis store's merge script is
// in Lua: per slot the newer of the stored and the given value (the given
// one at equal times), the slots the write does not mention kept, grouped
// by observation time again, groups by their lowest slot, values by slot.
// A stored entity of another layout or directory counts as empty. The
// upsert of entities not stored yet calls it in ON CONFLICT … DO UPDATE,
// for a row another writer inserted meanwhile, under the row's lock; the
// stored entities are merged in Go (Store.write): in PL/pgSQL the merge
// costs ~3.5 µs of the server's CPU per value. Times are
// compared as bytea, which Postgres compares bytewise whatever the locale
// (the encoding's times sort bytewise: docs/STORES.md).
//
// merge_fn stands for the function's (schema-qualified) name.
const mergeFunction = `
CREATE OR REPLACE FUNCTION merge_fn(stored bytea, given bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  vals bytea[] := '{}';
  times bytea[] := '{}';
  slots int[] := '{}';
  gtimes bytea[] := '{}';
  s bytea;
  at bytea;
  pos int;
  fst int;
  span int;
  bitmap int;
  n int;
  slot int;
  g int;
  lo int;
  hi int;
  bm bytea;
  body bytea;
  v bytea;
  res bytea;
BEGIN
  IF stored IS NULL OR length(stored) < 5 OR get_byte(stored, 0) <> 3
     OR substring(stored FROM 2 FOR 4) <> substring(given FROM 2 FOR 4) THEN
    RETURN given;
  END IF;
  FOREACH s IN ARRAY ARRAY[stored, given] LOOP
    pos := 5; -- offsets are 0-based (get_byte's)
    WHILE pos < length(s) LOOP
      at := substring(s FROM pos + 1 FOR 8);
      fst := get_byte(s, pos + 8) * 256 + get_byte(s, pos + 9);
      span := get_byte(s, pos + 10) * 256 + get_byte(s, pos + 11);
      bitmap := pos + 12;
      pos := bitmap + (span + 7) / 8;
      FOR k IN 0 .. span - 1 LOOP
        IF get_byte(s, bitmap + k / 8) & (1 << (k % 8)) <> 0 THEN
          n := get_byte(s, pos);
          pos := pos + 1;
          IF n = 255 THEN
            n := (get_byte(s, pos) << 24) | (get_byte(s, pos + 1) << 16) | (get_byte(s, pos + 2) << 8) | get_byte(s, pos + 3);
            pos := pos + 4;
          END IF;
          slot := fst + k;
          IF times[slot] IS NULL THEN
            slots := slots || slot;
          END IF;
          IF times[slot] IS NULL OR at >= times[slot] THEN
            vals[slot] := substring(s FROM pos + 1 FOR n);
            times[slot] := at;
          END IF;
          pos := pos + n;
        END IF;
      END LOOP;
    END LOOP;
  END LOOP;
  slots := ARRAY(SELECT x FROM unnest(slots) x ORDER BY x);
  -- the groups' times, by their lowest slot
  FOREACH slot IN ARRAY slots LOOP
    IF NOT (times[slot] = ANY(gtimes)) THEN
      gtimes := gtimes || times[slot];
    END IF;
  END LOOP;
  res := substring(given FROM 1 FOR 5);
  FOR g IN 1 .. coalesce(array_length(gtimes, 1), 0) LOOP
    lo := NULL;
    FOREACH slot IN ARRAY slots LOOP
      IF times[slot] = gtimes[g] THEN
        lo := coalesce(lo, slot);
        hi := slot;
      END IF;
    END LOOP;
    span := hi - lo + 1;
    bm := decode(repeat('00', (span + 7) / 8), 'hex');
    body := '';
    FOREACH slot IN ARRAY slots LOOP
      IF times[slot] = gtimes[g] THEN
        n := slot - lo;
        bm := set_byte(bm, n / 8, get_byte(bm, n / 8) | (1 << (n % 8)));
        v := vals[slot];
        IF length(v) < 255 THEN
          body := body || set_byte('\x00'::bytea, 0, length(v)) || v;
        ELSE
          body := body || '\xff'::bytea || int4send(length(v)) || v;
        END IF;
      END IF;
    END LOOP;
    res := res || gtimes[g] || substring(int4send(lo) FROM 3 FOR 2) || substring(int4send(span) FROM 3 FOR 2) || bm || body;
  END LOOP;
  RETURN res;
END
$fn$`
