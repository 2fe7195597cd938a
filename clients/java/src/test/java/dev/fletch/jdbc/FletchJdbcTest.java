package dev.fletch.jdbc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.ParameterMetaData;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Calendar;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TimeZone;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * fletch through the Arrow Flight SQL JDBC driver, the way a BI tool uses it: connect, browse
 * DatabaseMetaData, run statements and prepared statements executed again and again on one handle.
 *
 * <p>integration/jdbc_test.go runs this against a live {@code fletch serve} and passes, in the
 * environment: FLETCH_FLIGHT_ADDR (host:port), FLETCH_AS_OF (the evaluation time, RFC 3339),
 * FLETCH_EXPECTED (the reference rows, computed with DuckDB SQL: one "id TAB full_name TAB
 * review_count[30d]" line per key, "\N" for null) and, when the server wants one, FLETCH_TOKEN.
 */
class FletchJdbcTest {
  static final String COLUMNS = "id, full_name, \"review_count[30d]\"";

  static Connection conn;
  static String asOf;
  static Map<String, List<String>> expected;

  static String url(String extra) {
    String addr = env("FLETCH_FLIGHT_ADDR");
    StringBuilder url = new StringBuilder("jdbc:arrow-flight-sql://" + addr + "/?useEncryption=false");
    String token = System.getenv("FLETCH_TOKEN");
    if (token != null && !token.isEmpty()) {
      url.append("&token=").append(token);
    }
    return url.append(extra).toString();
  }

  static String env(String name) {
    String v = System.getenv(name);
    if (v == null || v.isEmpty()) {
      throw new IllegalStateException(name + " is not set: run these tests through integration/jdbc_test.go");
    }
    return v;
  }

  @BeforeAll
  static void connect() throws SQLException {
    conn = DriverManager.getConnection(url(""), new Properties());
    asOf = env("FLETCH_AS_OF");
    expected = new LinkedHashMap<>();
    for (String line : env("FLETCH_EXPECTED").split("\n")) {
      String[] cells = line.split("\t", -1);
      List<String> row = new ArrayList<>();
      for (String c : cells) {
        row.add(c.equals("\\N") ? null : c);
      }
      expected.put(cells[0], row);
    }
  }

  @AfterAll
  static void close() throws SQLException {
    if (conn != null) {
      conn.close();
    }
  }

  static List<List<String>> rows(ResultSet rs) throws SQLException {
    List<List<String>> out = new ArrayList<>();
    int n = rs.getMetaData().getColumnCount();
    while (rs.next()) {
      List<String> row = new ArrayList<>();
      for (int i = 1; i <= n; i++) {
        row.add(rs.getString(i));
      }
      out.add(row);
    }
    return out;
  }

  /** Rows whose first cell matches the predicate, as strings. */
  static List<List<String>> query(String sql) throws SQLException {
    try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      return rows(rs);
    }
  }

  static List<String> column(ResultSet rs, String name) throws SQLException {
    List<String> out = new ArrayList<>();
    while (rs.next()) {
      out.add(rs.getString(name));
    }
    rs.close();
    return out;
  }

  @Test
  void productAndDialect() throws SQLException {
    DatabaseMetaData md = conn.getMetaData();
    assertEquals("fletch", md.getDatabaseProductName());
    assertFalse(md.getDatabaseProductVersion().isEmpty());
    assertEquals("\"", md.getIdentifierQuoteString());
    assertEquals("\\", md.getSearchStringEscape());
    assertTrue(md.isReadOnly());
    assertFalse(md.supportsTransactions());
    assertFalse(md.supportsBatchUpdates());
    assertTrue(md.supportsColumnAliasing());
    assertTrue(md.getStringFunctions().contains("lower"));
    assertTrue(md.getNumericFunctions().contains("abs"));
    assertTrue(md.getTimeDateFunctions().contains("date_trunc"));
    assertEquals(Connection.TRANSACTION_NONE, md.getDefaultTransactionIsolation());
    assertTrue(md.supportsResultSetType(ResultSet.TYPE_FORWARD_ONLY));
    assertEquals("catalog", md.getCatalogTerm());
    assertEquals("schema", md.getSchemaTerm());
  }

  /**
   * Every no-argument DatabaseMetaData call (what DBeaver, Tableau or Power BI make on connect)
   * answers; only the driver's own "not supported" is allowed, never a server error.
   */
  @Test
  void everyMetadataCallAnswers() throws Exception {
    DatabaseMetaData md = conn.getMetaData();
    List<String> failures = new ArrayList<>();
    int called = 0;
    for (Method m : DatabaseMetaData.class.getMethods()) {
      if (m.getParameterCount() != 0 || m.getName().equals("getConnection")) {
        continue;
      }
      called++;
      try {
        Object v = m.invoke(md);
        if (v instanceof ResultSet) {
          try (ResultSet rs = (ResultSet) v) {
            while (rs.next()) {}
          }
        }
      } catch (InvocationTargetException e) {
        if (!(e.getCause() instanceof SQLFeatureNotSupportedException)
            && !(e.getCause() instanceof UnsupportedOperationException)) {
          failures.add(m.getName() + ": " + e.getCause());
        }
      }
    }
    assertTrue(called > 100, "only " + called + " metadata calls");
    assertTrue(failures.isEmpty(), String.join("\n", failures));
  }

  @Test
  void catalogsSchemasTables() throws SQLException {
    DatabaseMetaData md = conn.getMetaData();
    assertEquals(List.of("fletch"), column(md.getCatalogs(), "TABLE_CAT"));
    assertEquals(List.of("features"), column(md.getSchemas(), "TABLE_SCHEM"));
    assertEquals(List.of("features"), column(md.getSchemas("fletch", "feat%"), "TABLE_SCHEM"));
    assertEquals(List.of(), column(md.getSchemas("fletch", "x%"), "TABLE_SCHEM"));
    assertEquals(List.of("TABLE"), column(md.getTableTypes(), "TABLE_TYPE"));
    assertEquals(
        List.of("item", "item_price", "review", "seller", "user", "user_item"),
        column(md.getTables(null, null, "%", null), "TABLE_NAME"));
    assertEquals(
        List.of("user", "user_item"),
        column(md.getTables("fletch", "features", "user%", new String[] {"TABLE"}), "TABLE_NAME"));
    assertEquals(List.of(), column(md.getTables(null, null, "%", new String[] {"VIEW"}), "TABLE_NAME"));
  }

  @Test
  void columns() throws SQLException {
    DatabaseMetaData md = conn.getMetaData();
    Map<String, String[]> cols = new LinkedHashMap<>();
    try (ResultSet rs = md.getColumns(null, null, "review", "%")) {
      while (rs.next()) {
        cols.put(
            rs.getString("COLUMN_NAME"),
            new String[] {
              rs.getString("TYPE_NAME"), rs.getString("DATA_TYPE"), rs.getString("REMARKS"),
              rs.getString("TABLE_NAME"), rs.getString("IS_AUTOINCREMENT")
            });
      }
    }
    // As examples/marketplace/marketplace.py declares Review.
    assertEquals("BIGINT", cols.get("star_rating")[0]);
    assertEquals(String.valueOf(Types.BIGINT), cols.get("star_rating")[1]);
    assertEquals("1 to 5 stars", cols.get("star_rating")[2]);
    assertEquals("review", cols.get("star_rating")[3]);
    assertEquals("VARCHAR", cols.get("review_body")[0]);
    assertEquals(String.valueOf(Types.VARCHAR), cols.get("review_body")[1]);
    assertEquals("BOOLEAN", cols.get("is_positive")[0]);
    assertEquals("NO", cols.get("id")[4]);
    assertNotNull(cols.get("created_at"));
    assertEquals(List.of("star_rating"), column(md.getColumns(null, null, "review", "star_rat%"), "COLUMN_NAME"));
    // A comment directly above a feature is its description.
    assertEquals("computed by the tutorial's get_normalized_rating resolver below", cols.get("normalized_rating")[2]);
    // Has-one paths, one level deep, with what they follow and their class's owner and tags.
    assertEquals("VARCHAR", cols.get("item.title")[0]);
    assertEquals("title of the item (item)", cols.get("item.title")[2]);
    assertEquals(
        "full_name of the user (user); owner: ml-core@example.com; tags: marketplace", cols.get("user.full_name")[2]);
  }

  @Test
  void keys() throws SQLException {
    DatabaseMetaData md = conn.getMetaData();
    assertEquals(List.of("id"), column(md.getPrimaryKeys(null, null, "user"), "COLUMN_NAME"));
    assertEquals(List.of(), column(md.getPrimaryKeys(null, null, "no_such_table"), "COLUMN_NAME"));
    assertEquals(List.of("item", "user"), column(md.getImportedKeys(null, null, "review"), "PKTABLE_NAME"));
    assertEquals(List.of("item_id", "user_id"), column(md.getImportedKeys(null, null, "review"), "FKCOLUMN_NAME"));
    assertEquals(
        List.of("item_price", "review", "user_item"), column(md.getExportedKeys(null, null, "user"), "FKTABLE_NAME"));
    assertEquals(
        List.of("user_id"), column(md.getCrossReference(null, null, "user", null, null, "user_item"), "FKCOLUMN_NAME"));
  }

  // No getTypeInfo test: the driver (18.3) does not ask the server
  // (GetXdbcTypeInfo) and answers an empty result itself.

  @Test
  void statement() throws SQLException {
    List<String> keys = new ArrayList<>(expected.keySet());
    String in = String.join(", ", keys.stream().map(k -> "'" + k + "'").toList());
    List<List<String>> got =
        query("SELECT " + COLUMNS + " FROM user WHERE id IN (" + in + ") AND __as_of__ = '" + asOf + "'");
    assertEquals(new ArrayList<>(expected.values()), got);

    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery("SELECT " + COLUMNS + " FROM user WHERE id = '1'")) {
      ResultSetMetaData rmd = rs.getMetaData();
      assertEquals(3, rmd.getColumnCount());
      assertEquals("review_count[30d]", rmd.getColumnLabel(3));
      assertEquals(Types.BIGINT, rmd.getColumnType(3));
    }
  }

  @Test
  void badQueryIsAClearError() {
    SQLException e = assertThrows(SQLException.class, () -> query("SELECT ful_name FROM user WHERE id = '1'"));
    assertTrue(String.valueOf(e.getMessage()).contains("full_name"), e.getMessage());
  }

  /**
   * One prepared statement, executed again and again on the same handle with a key bound each
   * time (timestampParameter binds the evaluation time too).
   */
  @Test
  void preparedStatementManyExecutions() throws SQLException {
    try (PreparedStatement ps =
        conn.prepareStatement("SELECT " + COLUMNS + " FROM user WHERE id = ? AND __as_of__ = '" + asOf + "'")) {
      assertEquals(1, ps.getParameterMetaData().getParameterCount());
      for (int round = 0; round < 3; round++) {
        for (Map.Entry<String, List<String>> e : expected.entrySet()) {
          ps.setString(1, e.getKey());
          try (ResultSet rs = ps.executeQuery()) {
            assertEquals(List.of(e.getValue()), rows(rs), "key " + e.getKey() + ", round " + round);
          }
        }
      }
    }
  }

  /**
   * {@code __as_of__ = ?} bound with setTimestamp on one prepared statement, rebound and executed
   * again for each key and time: every execution answers what the same query with the time
   * written as a literal answers. The driver (18.3) writes epoch milliseconds whatever unit the
   * parameter declares (apache/arrow-java#838); fletch declares timestamp parameters in
   * milliseconds, so the times land where they should. The times are chosen so their answers
   * differ (a time read in the wrong unit would answer as of 1970).
   *
   * <p>JDBC reads a Timestamp without a Calendar as wall-clock time in the connection's time zone
   * (the JVM's unless the URL says {@code timeZone=}): an instant is bound with a UTC Calendar, or
   * plainly on a {@code timeZone=UTC} connection. Both are checked, whatever the JVM's zone.
   */
  @Test
  void timestampParameter() throws SQLException {
    Instant anchor = Instant.parse(asOf);
    List<Instant> times =
        List.of(anchor, anchor.minus(Duration.ofDays(10)), anchor.minus(Duration.ofDays(25)).plusSeconds(43_200));
    String select = "SELECT " + COLUMNS + " FROM user WHERE id = ? AND __as_of__ = ?";
    Map<Instant, List<List<String>>> literal = new LinkedHashMap<>();
    for (Instant t : times) {
      List<List<String>> rows = new ArrayList<>();
      for (String key : expected.keySet()) {
        rows.addAll(query(select.replaceFirst("\\?", "'" + key + "'").replace("?", "'" + t + "'")));
      }
      literal.put(t, rows);
    }
    assertEquals(3, new HashSet<>(literal.values()).size(), "the times chosen answer alike: " + literal);

    Calendar utc = Calendar.getInstance(TimeZone.getTimeZone("UTC"));
    try (Connection utcConn = DriverManager.getConnection(url("&timeZone=UTC"), new Properties())) {
      for (Connection c : List.of(conn, utcConn)) {
        try (PreparedStatement ps = c.prepareStatement(select)) {
          ParameterMetaData pmd = ps.getParameterMetaData();
          assertEquals(2, pmd.getParameterCount());
          assertEquals(Types.TIMESTAMP_WITH_TIMEZONE, pmd.getParameterType(2));
          for (Instant t : times) {
            List<List<String>> got = new ArrayList<>();
            for (String key : expected.keySet()) {
              ps.setString(1, key);
              if (c == conn) {
                ps.setTimestamp(2, Timestamp.from(t), utc);
              } else {
                ps.setTimestamp(2, Timestamp.from(t));
              }
              try (ResultSet rs = ps.executeQuery()) {
                got.addAll(rows(rs));
              }
            }
            assertEquals(literal.get(t), got, "as of " + t + (c == conn ? ", UTC Calendar" : ", timeZone=UTC"));
          }
        }
      }
    }
  }

  /** executeBatch is an update: refused, saying why, and the connection goes on. */
  @Test
  void executeBatchIsRefused() throws SQLException {
    try (PreparedStatement ps = conn.prepareStatement("SELECT " + COLUMNS + " FROM user WHERE id = ?")) {
      ps.setString(1, "1");
      ps.addBatch();
      ps.setString(1, "50");
      ps.addBatch();
      SQLException e = assertThrows(SQLException.class, ps::executeBatch);
      assertTrue(String.valueOf(e.getMessage()).contains("read-only"), e.getMessage());
    }
    assertEquals(1, query("SELECT id FROM user WHERE id = '1'").size());
  }

  /** The same query without parameters answers the same as the prepared one. */
  @Test
  void preparedMatchesStatement() throws SQLException {
    String key = expected.keySet().iterator().next();
    try (PreparedStatement ps = conn.prepareStatement("SELECT " + COLUMNS + " FROM user WHERE id = ?")) {
      ps.setString(1, key);
      try (ResultSet rs = ps.executeQuery()) {
        assertEquals(query("SELECT " + COLUMNS + " FROM user WHERE id = '" + key + "'"), rows(rs));
      }
    }
  }

  /** {@code catalog=} sets the session's catalog (SetSessionOptions): fletch's is accepted. */
  @Test
  void catalogSessionOption() throws SQLException {
    Connection c = DriverManager.getConnection(url("&catalog=fletch"), new Properties());
    try (Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT id FROM user WHERE id = '1'")) {
      assertEquals(List.of(List.of("1")), rows(rs));
    } finally {
      closeIgnoringSessionBug(c);
    }
  }

  @Test
  void wrongCatalogIsRefused() {
    SQLException e =
        assertThrows(
            SQLException.class,
            () -> closeIgnoringSessionBug(DriverManager.getConnection(url("&catalog=nope"), new Properties())));
    assertTrue(String.valueOf(e.getMessage()).contains("catalog"), e.getMessage());
  }

  /**
   * With {@code catalog=} set, the driver (18.3) closes its client twice and the second
   * CloseSession fails on the closed channel (apache/arrow-java#66, #863): that one error is not
   * the server's.
   */
  static void closeIgnoringSessionBug(Connection c) throws SQLException {
    try {
      c.close();
    } catch (SQLException e) {
      if (!String.valueOf(e.getMessage()).contains("Channel shutdown invoked")) {
        throw e;
      }
    }
  }

  /**
   * SQL for BI tools (issue 15): browsing, aggregates, joins and Superset's wrapper, each answer
   * equal to DuckDB SQL over the same source rows (FLETCH_BI: records separated by U+001E, each
   * the query then its rows, separated by U+001F, cells by tabs, null as \N).
   */
  @Test
  void biQueries() throws SQLException {
    for (String rec : env("FLETCH_BI").split("\u001e")) {
      String[] parts = rec.split("\u001f", -1);
      String sql = parts[0];
      List<List<String>> got = query(sql);
      assertEquals(parts.length - 1, got.size(), sql);
      for (int r = 0; r < got.size(); r++) {
        String[] want = parts[r + 1].split("\t", -1);
        List<String> row = got.get(r);
        assertEquals(want.length, row.size(), sql);
        for (int c = 0; c < want.length; c++) {
          String w = want[c].equals("\\N") ? null : want[c];
          String g = row.get(c);
          assertTrue(sameCell(g, w), sql + ": row " + r + " column " + c + ": got " + g + ", want " + w);
        }
      }
    }
  }

  static List<String> concat(List<String> a, List<String> b) {
    List<String> out = new ArrayList<>(a);
    out.addAll(b);
    return out;
  }

  static boolean sameCell(String got, String want) {
    if (got == null || want == null) {
      return got == want;
    }
    // A timestamp at midnight is given as its date.
    if (got.equals(want) || got.equals(want + " 00:00:00.0")) {
      return true;
    }
    try {
      double g = Double.parseDouble(got), w = Double.parseDouble(want);
      return Math.abs(g - w) <= 1e-9 * Math.max(1, Math.abs(w));
    } catch (NumberFormatException e) {
      return false;
    }
  }

  /**
   * Tableau's schema probe: the columns and no rows. The server sends one empty batch, but driver
   * 18.3.0 still lists every column of an empty answer twice (apache/arrow-java#44, fixed after
   * 18.3.0): the columns are checked up to that repetition.
   */
  @Test
  void schemaProbe() throws SQLException {
    List<String> columns = column(conn.getMetaData().getColumns(null, null, "item", "%"), "COLUMN_NAME");
    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery("SELECT * FROM item WHERE 1=0")) {
      ResultSetMetaData rmd = rs.getMetaData();
      List<String> names = new ArrayList<>();
      for (int i = 1; i <= rmd.getColumnCount(); i++) {
        names.add(rmd.getColumnLabel(i));
      }
      List<String> once = names.subList(0, new HashSet<>(names).size());
      assertTrue(names.size() == once.size() || names.equals(concat(once, once)), "columns: " + names);
      assertTrue(columns.containsAll(once), once + " not all in getColumns " + columns);
      assertFalse(rs.next());
    }
    assertEquals(List.of(List.of("1")), query("SELECT 1"));
  }
}
