// navad dashboard: the agencies' report page.
//
// The page has no data of its own. It asks navad's reports API, with the
// key the user typed, for the period and campaigns chosen, and shows what
// comes back: a chart over time (uPlot), a table with totals and a CSV of
// exactly that table, and a map of H3 hexagons (Leaflet) from
// /v1/reports/cells.geojson. So it shows exactly what the key may see.
//
// The key lives in this tab's sessionStorage only: never localStorage, never
// a cookie, never a URL. No script, style or font comes from anywhere but
// this server; map tiles only if the operator configured a tile server.
(function () {
  'use strict';

  const KEY_STORAGE = 'navad.apiKey';
  const LANG_STORAGE = 'navad.lang';
  // The API's root: the page is served at <root>dashboard/.
  const ROOT = location.pathname.replace(/dashboard\/[^/]*$/, '');
  // The longest period the chart shows by the hour.
  const HOURLY_DAYS = 3;

  // The counts of a report row, in the API's order, and how each is drawn.
  const COUNTS = ['served', 'impressions', 'clicks', 'navigations', 'visits'];
  const SERIES = {
    served: { stroke: '#52606d', dash: [6, 4], width: 2 },
    impressions: { stroke: '#0b5cad', width: 2 },
    clicks: { stroke: '#c2410c', width: 2 },
    navigations: { stroke: '#7048e8', dash: [2, 3], width: 2.5 },
    visits: { stroke: '#1e7b34', width: 3 },
  };
  const METRIC_COLUMNS = ['served', 'impressions', 'clicks', 'ctr', 'navigations', 'visits', 'visit_rate'];
  const RATES = { ctr: true, visit_rate: true };
  // Key columns of each dimension, in the order the API writes them; a
  // store is named by its advertiser and its ID.
  const DIM_COLUMNS = {
    day: ['day'], hour: ['hour'], advertiser: ['advertiser_id'], campaign: ['campaign_id'],
    publisher: ['publisher_id'], store: ['advertiser_id', 'store_id'], cell: ['cell'],
  };
  // Sequential colours (light to dark) for the hexagons, one ramp a metric.
  const RAMPS = {
    impressions: ['#dbe9f6', '#b3d1ec', '#7fb2dd', '#4a8fcb', '#1f6bb0', '#08468a'],
    visits: ['#dcf0d5', '#b5e0a8', '#83c97a', '#4eab55', '#23873a', '#0b5d24'],
  };
  const ZERO_FILL = '#f7f8fa';

  const TEXT = {
    en: {
      title: 'Reports',
      skip: 'Skip to the reports',
      langHint: 'Change the language of the page (日本語 / English)',
      keyHeading: 'API key',
      keyLabel: 'Your API key',
      keyHelp: 'Kept only in this browser tab, and sent only to this server\'s reports API. Closing the tab forgets it.',
      connect: 'Open reports',
      forget: 'Forget key',
      filtersHeading: 'What to show',
      from: 'From',
      to: 'To',
      rowsBy: 'Table rows by',
      'by.campaign': 'Campaign',
      'by.day': 'Day',
      'by.dayCampaign': 'Day and campaign',
      'by.hour': 'Hour of the day',
      'by.advertiser': 'Advertiser',
      'by.publisher': 'Navigation app',
      'by.store': 'Store',
      'by.cell': 'Area (H3 cell)',
      campaignsLegend: 'Campaigns',
      campaignsHelp: 'Tick none to see every campaign this key may see.',
      noCampaigns: 'This key sees no campaign with traffic in this period.',
      show: 'Show',
      chartHeading: 'Over time',
      perDay: 'per day',
      perHour: 'per hour',
      seriesLegend: 'Lines',
      chartData: 'The chart\'s numbers as a table',
      chartLabel: 'Line chart of served ads, impressions, clicks, navigations and visits {step}, {from} to {to}. The same numbers are in the table below the chart.',
      chartCaption: '{step}, {from} to {to} ({tz})',
      tableHeading: 'Totals',
      download: 'Download CSV',
      mapHeading: 'Where',
      colourBy: 'Colour the areas by',
      mapHelp: 'Each hexagon is an area of about 0.7 km² (H3 resolution 8) where ads were shown. Focus the map to pan with the arrow keys and zoom with + and −.',
      mapLabel: 'Map of the areas where ads ran, coloured by {metric}',
      cellsData: 'The areas as a table',
      cellsCaption: '{n} areas, most {metric} first',
      noCells: 'No areas in this period.',
      footer: 'navad dashboard. Charts by',
      footerMaps: 'maps by',
      'm.served': 'Served',
      'm.impressions': 'Impressions',
      'm.clicks': 'Clicks',
      'm.ctr': 'CTR',
      'm.navigations': 'Navigations',
      'm.visits': 'Visits',
      'm.visit_rate': 'Visit rate',
      'col.time': 'Time',
      'col.day': 'Day',
      'col.hour': 'Hour',
      'col.campaign_id': 'Campaign ID',
      'col.campaign_name': 'Campaign',
      'col.advertiser_id': 'Advertiser ID',
      'col.publisher_id': 'Navigation app ID',
      'col.store_id': 'Store ID',
      'col.cell': 'Area (H3 cell)',
      total: 'Total',
      noRows: 'No traffic in this period.',
      tableNote: '{from} to {to} ({tz}). CTR and visit rate are per impression.',
      loading: 'Loading…',
      shown: 'Showing {from} to {to} ({tz}): {rows} table rows, {cells} areas.',
      checking: 'Checking the key…',
      forgotten: 'The key is forgotten; this tab keeps nothing.',
      badKey: 'This key was not accepted. Check it and try again.',
      denied: 'This key may not see these reports: {msg}',
      rateLimited: 'Too many requests with this key; try again in a moment.',
      failed: 'The server refused: {msg}',
      network: 'The server could not be reached.',
      badPeriod: 'The start date must not be after the end date.',
      downloaded: 'Downloaded {file}.',
      hourLabel: '{h}:00',
    },
    ja: {
      title: '配信レポート',
      skip: 'レポートへ移動',
      langHint: 'ページの言語を切り替える（日本語 / English）',
      keyHeading: 'APIキー',
      keyLabel: 'APIキー',
      keyHelp: 'このブラウザのタブの中だけに保存し、このサーバーのレポートAPIにだけ送ります。タブを閉じると消えます。',
      connect: 'レポートを開く',
      forget: 'キーを消去',
      filtersHeading: '表示する内容',
      from: '開始日',
      to: '終了日',
      rowsBy: '表の行',
      'by.campaign': 'キャンペーン別',
      'by.day': '日別',
      'by.dayCampaign': '日別・キャンペーン別',
      'by.hour': '時間帯別',
      'by.advertiser': '広告主別',
      'by.publisher': 'ナビアプリ別',
      'by.store': '店舗別',
      'by.cell': 'エリア別（H3セル）',
      campaignsLegend: 'キャンペーン',
      campaignsHelp: '何も選ばなければ、このキーで見られるすべてのキャンペーンを表示します。',
      noCampaigns: 'この期間に実績のあるキャンペーンはありません。',
      show: '表示',
      chartHeading: '推移',
      perDay: '日ごと',
      perHour: '1時間ごと',
      seriesLegend: '表示する線',
      chartData: 'グラフの数値を表で見る',
      chartLabel: '配信数・インプレッション・クリック・ナビ開始・来店の{step}の折れ線グラフ（{from}〜{to}）。同じ数値はグラフの下の表にあります。',
      chartCaption: '{step}、{from}〜{to}（{tz}）',
      tableHeading: '集計',
      download: 'CSVをダウンロード',
      mapHeading: '地図',
      colourBy: 'エリアの色分け',
      mapHelp: '六角形はそれぞれ約0.7 km²のエリア（H3 解像度8）で、広告が表示された場所です。地図にフォーカスすると矢印キーで移動、+ と − で拡大・縮小できます。',
      mapLabel: '広告が表示されたエリアの地図（{metric}で色分け）',
      cellsData: 'エリアの数値を表で見る',
      cellsCaption: '{n}エリア（{metric}の多い順）',
      noCells: 'この期間のエリアはありません。',
      footer: 'navad ダッシュボード。グラフ：',
      footerMaps: '地図：',
      'm.served': '配信数',
      'm.impressions': 'インプレッション',
      'm.clicks': 'クリック',
      'm.ctr': 'クリック率',
      'm.navigations': 'ナビ開始',
      'm.visits': '来店',
      'm.visit_rate': '来店率',
      'col.time': '日時',
      'col.day': '日付',
      'col.hour': '時',
      'col.campaign_id': 'キャンペーンID',
      'col.campaign_name': 'キャンペーン名',
      'col.advertiser_id': '広告主ID',
      'col.publisher_id': 'ナビアプリID',
      'col.store_id': '店舗ID',
      'col.cell': 'エリア（H3セル）',
      total: '合計',
      noRows: 'この期間の実績はありません。',
      tableNote: '{from}〜{to}（{tz}）。クリック率と来店率はインプレッションあたりの割合です。',
      loading: '読み込み中…',
      shown: '{from}〜{to}（{tz}）を表示中：表 {rows} 行、{cells} エリア。',
      checking: 'キーを確認しています…',
      forgotten: 'キーを消去しました。このタブには何も残っていません。',
      badKey: 'このキーは受け付けられませんでした。確認してもう一度お試しください。',
      denied: 'このキーではこのレポートを見られません：{msg}',
      rateLimited: 'このキーのリクエストが多すぎます。少し待ってからお試しください。',
      failed: 'サーバーが受け付けませんでした：{msg}',
      network: 'サーバーに接続できませんでした。',
      badPeriod: '開始日は終了日より後にできません。',
      downloaded: '{file} をダウンロードしました。',
      hourLabel: '{h}時',
    },
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    lang: $('lang'), keyForm: $('key-form'), key: $('key'), connect: $('connect'), forget: $('forget'),
    status: $('status'), error: $('error'), report: $('report'), filters: $('filters'),
    from: $('from'), to: $('to'), rows: $('rows'), campaignList: $('campaign-list'), show: $('show'),
    chart: $('chart'), chartStep: $('chart-step'), seriesList: $('series-list'), chartTable: $('chart-table'),
    reportTable: $('report-table'), tableNote: $('table-note'), download: $('download'),
    map: $('map'), mapLegend: $('map-legend'), cellsTable: $('cells-table'),
  };

  const state = {
    lang: 'en',
    key: null,
    config: { tiles: null },
    today: null,
    timezone: '',
    names: new Map(), // campaign ID → name, from /v1/campaigns when the key may list them
    campaignIDs: [], // the campaigns offered in the filter
    shown: Object.fromEntries(COUNTS.map((m) => [m, true])),
    metric: 'impressions',
    data: null, // the last answers: {from, to, tz, step, series, table, cells}
    seq: 0,
    chart: null,
    map: null,
    hexLayer: null,
    tableModel: null,
  };

  // ---- Text ----

  function t(id, vars) {
    let s = TEXT[state.lang][id] ?? TEXT.en[id] ?? id;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  function setLanguage(lang) {
    state.lang = lang === 'ja' ? 'ja' : 'en';
    sessionStorage.setItem(LANG_STORAGE, state.lang);
    document.documentElement.lang = state.lang;
    document.title = 'navad ' + t('title');
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    // The button offers the other language, written in that language.
    const other = state.lang === 'ja' ? 'en' : 'ja';
    el.lang.innerHTML = '';
    const span = document.createElement('span');
    span.lang = other;
    span.textContent = other === 'ja' ? '日本語' : 'English';
    el.lang.append(span);
    renderSeriesToggles();
    if (state.data) render();
  }

  const numberFormat = () => new Intl.NumberFormat(state.lang === 'ja' ? 'ja-JP' : 'en-US');
  const fmtInt = (n) => numberFormat().format(n);
  const fmtCompact = (n) => new Intl.NumberFormat(state.lang === 'ja' ? 'ja-JP' : 'en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(n);
  const fmtRate = (r) => (r * 100).toFixed(2) + '%';

  // ---- Days (YYYY-MM-DD, calendar days of the business time zone) ----

  function addDays(day, n) {
    const [y, m, d] = day.split('-').map(Number);
    return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
  }
  function daysBetween(from, to) {
    const ms = (s) => Date.UTC(+s.slice(0, 4), +s.slice(5, 7) - 1, +s.slice(8, 10));
    return Math.round((ms(to) - ms(from)) / 86400000);
  }

  // ---- The API ----

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, params) {
    const url = new URL(ROOT + path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v) url.searchParams.set(k, v);
    let res;
    try {
      res = await fetch(url, {
        headers: { Authorization: 'Bearer ' + state.key, Accept: 'application/json, application/geo+json' },
        cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new APIError(0, 'network', String(e));
    }
    if (!res.ok) {
      let body = {};
      try { body = await res.json(); } catch (e) { /* not the API's error body */ }
      const err = body && body.error ? body.error : {};
      throw new APIError(res.status, err.code || 'http_' + res.status, err.message || res.statusText);
    }
    return res.json();
  }

  function explain(e) {
    if (!(e instanceof APIError)) return t('failed', { msg: String(e && e.message || e) });
    if (e.status === 0) return t('network');
    if (e.status === 401) return t('badKey');
    if (e.status === 403) return t('denied', { msg: e.message });
    if (e.status === 429) return t('rateLimited');
    return t('failed', { msg: e.message });
  }

  function showError(msg) {
    el.error.textContent = msg;
    el.error.hidden = !msg;
  }
  function setStatus(msg) { el.status.textContent = msg; }
  function setBusy(busy) {
    el.report.setAttribute('aria-busy', busy ? 'true' : 'false');
    el.show.disabled = busy;
    el.connect.disabled = busy;
  }

  // ---- Key ----

  async function connect(key) {
    const previous = state.key;
    state.key = key;
    showError('');
    setStatus(t('checking'));
    setBusy(true);
    let probe;
    try {
      // Today's report, grouped by campaign: checks the key and tells the
      // server's "today" and time zone, whatever the browser's clock says.
      probe = await api('v1/reports', { group_by: 'campaign' });
    } catch (e) {
      setBusy(false);
      setStatus('');
      showError(explain(e));
      // A refused key forgets everything; after any other failure the
      // key in use, if any, stays in use.
      if (e.status === 401) forget(false);
      else state.key = previous;
      return;
    }
    if (key !== previous) {
      // Another key sees other campaigns: offer and tick none of the last.
      el.campaignList.innerHTML = '';
      state.campaignIDs = [];
      state.data = null;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    state.today = probe.to;
    state.timezone = probe.timezone || '';
    el.forget.hidden = false;
    el.report.hidden = false;
    if (!el.from.value || !el.to.value) {
      el.to.value = state.today;
      el.from.value = addDays(state.today, -6);
    }
    state.names = new Map();
    try {
      const list = await api('v1/campaigns');
      for (const c of list.campaigns || []) state.names.set(c.id, c.name || '');
    } catch (e) {
      // A publisher's key may not list campaigns; its report names them.
      if (e.status === 401) { setBusy(false); forget(false); showError(t('badKey')); return; }
    }
    setBusy(false);
    await show();
  }

  function forget(announce) {
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = null;
    state.data = null;
    state.seq++;
    el.key.value = '';
    el.forget.hidden = true;
    el.report.hidden = true;
    el.campaignList.innerHTML = '';
    state.campaignIDs = [];
    if (state.chart) { state.chart.destroy(); state.chart = null; }
    if (state.hexLayer) { state.hexLayer.remove(); state.hexLayer = null; }
    for (const tbl of [el.chartTable, el.reportTable, el.cellsTable]) {
      for (const part of tbl.querySelectorAll('thead, tbody, tfoot')) part.innerHTML = '';
    }
    if (announce) { showError(''); setStatus(t('forgotten')); }
    el.key.focus();
  }

  // ---- Loading a report ----

  function selectedCampaigns() {
    return [...el.campaignList.querySelectorAll('input:checked')].map((i) => i.value);
  }

  async function show() {
    const from = el.from.value, to = el.to.value;
    showError('');
    if (!from || !to) return;
    if (from > to) { showError(t('badPeriod')); el.from.focus(); return; }
    const ids = selectedCampaigns();
    const filter = { from, to, campaign_id: ids.join(',') };
    const step = daysBetween(from, to) < HOURLY_DAYS ? 'hour' : 'day';
    const rows = el.rows.value;
    const seq = ++state.seq;
    setBusy(true);
    setStatus(t('loading'));
    let answers;
    try {
      answers = await Promise.all([
        api('v1/reports', { from, to, group_by: 'campaign' }), // every campaign with traffic, for the filter
        api('v1/reports', { ...filter, group_by: step === 'hour' ? 'day,hour' : 'day' }),
        api('v1/reports', { ...filter, group_by: rows }),
        // Counts by cell are kept for fewer days than the rest: for a
        // period that begins earlier the map stays empty and says why,
        // and the chart and table still show.
        api('v1/reports/cells.geojson', filter).catch((e) => {
          if (!(e instanceof APIError) || e.status !== 400) throw e;
          return { type: 'FeatureCollection', features: [], unavailable: explain(e) };
        }),
      ]);
    } catch (e) {
      if (seq !== state.seq) return;
      setBusy(false);
      setStatus('');
      showError(explain(e));
      if (e.status === 401) forget(false);
      return;
    }
    if (seq !== state.seq) return;
    const [inPeriod, series, table, cells] = answers;
    state.timezone = table.timezone || state.timezone;
    updateCampaigns(inPeriod.rows.map((r) => r.campaign_id), ids);
    state.data = { from, to, tz: state.timezone, step, series, table, cells };
    setBusy(false);
    render();
    if (cells.unavailable) showError(cells.unavailable);
  }

  function render() {
    const d = state.data;
    renderChart(d);
    renderTable(d);
    renderMap(d);
    setStatus(t('shown', { from: d.from, to: d.to, tz: d.tz, rows: fmtInt(d.table.rows.length), cells: fmtInt(d.cells.features.length) }));
  }

  // ---- Campaign filter ----

  function campaignLabel(id) {
    return state.names.get(id) || '';
  }

  // updateCampaigns offers every campaign the key may list plus every one
  // with traffic in the period, keeping what is ticked.
  function updateCampaigns(withTraffic, ticked) {
    const ids = [...new Set([...state.names.keys(), ...withTraffic, ...ticked])].sort((a, b) => {
      const na = campaignLabel(a) || a, nb = campaignLabel(b) || b;
      return na.localeCompare(nb) || a.localeCompare(b);
    });
    if (ids.join('\n') === state.campaignIDs.join('\n')) return; // keep focus where it is
    state.campaignIDs = ids;
    const keep = new Set(ticked);
    el.campaignList.innerHTML = '';
    if (ids.length === 0) {
      const li = document.createElement('li');
      li.textContent = t('noCampaigns');
      li.dataset.i18n = 'noCampaigns';
      el.campaignList.append(li);
      return;
    }
    for (const id of ids) {
      const li = document.createElement('li');
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.name = 'campaign_id';
      box.value = id;
      box.checked = keep.has(id);
      label.append(box);
      const name = campaignLabel(id);
      if (name) label.append(' ' + name + ' ');
      const code = document.createElement('span');
      code.className = 'id';
      code.textContent = id;
      label.append(code);
      li.append(label);
      el.campaignList.append(li);
    }
  }

  // ---- Chart ----

  function renderSeriesToggles() {
    el.seriesList.innerHTML = '';
    COUNTS.forEach((m, i) => {
      const li = document.createElement('li');
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = state.shown[m];
      box.addEventListener('change', () => {
        state.shown[m] = box.checked;
        if (state.chart) state.chart.setSeries(i + 1, { show: box.checked });
      });
      const swatch = document.createElement('span');
      swatch.className = 'swatch' + (SERIES[m].dash ? ' dashed' : '');
      swatch.style.borderTopColor = SERIES[m].stroke;
      swatch.setAttribute('aria-hidden', 'true');
      label.append(box, swatch, ' ' + t('m.' + m));
      li.append(label);
      el.seriesList.append(li);
    });
  }

  // timeBuckets returns the chart's x positions: every day of the period,
  // or every hour when it is short, with the counts of each (zero where
  // the report has no row).
  function timeBuckets(d) {
    const labels = [], keys = new Map();
    const n = daysBetween(d.from, d.to);
    for (let i = 0; i <= n; i++) {
      const day = addDays(d.from, i);
      if (d.step === 'day') {
        keys.set(day, labels.length);
        labels.push(day);
      } else {
        for (let h = 0; h < 24; h++) {
          keys.set(day + ' ' + h, labels.length);
          labels.push(day + ' ' + String(h).padStart(2, '0') + ':00');
        }
      }
    }
    const values = COUNTS.map(() => new Array(labels.length).fill(0));
    for (const r of d.series.rows) {
      const i = keys.get(d.step === 'day' ? r.day : r.day + ' ' + r.hour);
      if (i === undefined) continue;
      COUNTS.forEach((m, j) => { values[j][i] += r[m]; });
    }
    return { labels, values };
  }

  function renderChart(d) {
    const { labels, values } = timeBuckets(d);
    const stepText = t(d.step === 'day' ? 'perDay' : 'perHour');
    el.chartStep.textContent = '(' + stepText + ')';
    el.chart.setAttribute('aria-label', t('chartLabel', { step: stepText, from: d.from, to: d.to }));

    // The accessible twin of the chart: the same numbers as a table.
    const caption = el.chartTable.querySelector('caption');
    caption.textContent = t('chartCaption', { step: stepText, from: d.from, to: d.to, tz: d.tz });
    const head = el.chartTable.querySelector('thead'), body = el.chartTable.querySelector('tbody');
    head.innerHTML = '';
    body.innerHTML = '';
    const hr = head.insertRow();
    hr.append(th(t('col.time'), 'col'));
    for (const m of COUNTS) hr.append(th(t('m.' + m), 'col', 'num'));
    labels.forEach((label, i) => {
      const tr = body.insertRow();
      tr.append(th(label, 'row'));
      COUNTS.forEach((m, j) => tr.append(td(fmtInt(values[j][i]), 'num')));
    });

    const short = (i) => {
      const label = labels[i];
      if (label === undefined) return '';
      return d.step === 'day' ? label.slice(5).replace('-', '/') : label.slice(5, 10).replace('-', '/') + ' ' + label.slice(11, 13) + 'h';
    };
    const width = Math.max(280, el.chart.clientWidth || 600);
    const opts = {
      width,
      height: width < 500 ? 240 : 300,
      scales: { x: { time: false } },
      legend: { live: true },
      hooks: {
        // A click on uPlot's legend shows or hides a line too: keep the
        // checkboxes in step.
        setSeries: [(u, i, o) => {
          if (i == null || i < 1 || !o || o.show == null) return;
          state.shown[COUNTS[i - 1]] = o.show;
          const box = el.seriesList.querySelectorAll('input')[i - 1];
          if (box) box.checked = o.show;
        }],
      },
      cursor: { drag: { x: false, y: false } },
      series: [
        { label: t('col.time'), value: (u, v) => (v == null ? '' : labels[v] || '') },
        ...COUNTS.map((m) => ({
          label: t('m.' + m),
          stroke: SERIES[m].stroke,
          width: SERIES[m].width,
          dash: SERIES[m].dash,
          show: state.shown[m],
          points: { show: labels.length <= 40 },
          value: (u, v) => (v == null ? '' : fmtInt(v)),
        })),
      ],
      axes: [
        {
          incrs: [1, 2, 3, 4, 6, 7, 12, 14, 24, 30, 48, 60, 72, 90, 180, 365],
          space: d.step === 'day' ? 50 : 70,
          values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? short(v) : '')),
        },
        {
          size: 60,
          values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? fmtCompact(v) : '')),
        },
      ],
    };
    if (state.chart) state.chart.destroy();
    el.chart.innerHTML = '';
    state.chart = new uPlot(opts, [labels.map((_, i) => i), ...values], el.chart);
  }

  function resizeChart() {
    if (!state.chart || el.report.hidden) return;
    const width = Math.max(280, el.chart.clientWidth);
    if (Math.abs(width - state.chart.width) > 2) state.chart.setSize({ width, height: width < 500 ? 240 : 300 });
  }

  // ---- Table and CSV ----

  function th(text, scope, cls) {
    const c = document.createElement('th');
    c.textContent = text;
    if (scope) c.scope = scope;
    if (cls) c.className = cls;
    return c;
  }
  function td(text, cls) {
    const c = document.createElement('td');
    c.textContent = text;
    if (cls) c.className = cls;
    return c;
  }

  // keyColumns returns the table's key columns for a report's group_by, as
  // the API names them, with the campaign's name after its ID when known.
  function keyColumns(groupBy) {
    const cols = [];
    for (const dim of groupBy) {
      for (const c of DIM_COLUMNS[dim] || []) {
        if (cols.includes(c)) continue;
        cols.push(c);
        if (c === 'campaign_id' && state.names.size > 0) cols.push('campaign_name');
      }
    }
    return cols;
  }

  // tableModel is what the table shows, cell by cell: text as displayed
  // and the value its CSV holds (the same, without digit grouping).
  function tableModel(d) {
    const rep = d.table;
    const keys = keyColumns(rep.group_by || []);
    const columns = [...keys, ...METRIC_COLUMNS];
    const cell = (col, row) => {
      if (col === 'campaign_name') {
        const v = campaignLabel(row.campaign_id);
        return { text: v, csv: v };
      }
      if (col === 'hour') {
        const v = t('hourLabel', { h: String(row.hour).padStart(2, '0') });
        return { text: v, csv: v };
      }
      if (RATES[col]) {
        const v = fmtRate(row[col]);
        return { text: v, csv: v, num: true };
      }
      if (METRIC_COLUMNS.includes(col)) return { text: fmtInt(row[col]), csv: String(row[col]), num: true };
      const v = row[col] == null ? '' : String(row[col]);
      return { text: v, csv: v };
    };
    const rows = rep.rows.map((r) => columns.map((c) => cell(c, r)));
    const totals = columns.map((c, i) => {
      if (METRIC_COLUMNS.includes(c)) return cell(c, rep.totals);
      const v = i === 0 ? t('total') : '';
      return { text: v, csv: v };
    });
    return {
      headers: columns.map((c) => t(METRIC_COLUMNS.includes(c) ? 'm.' + c : 'col.' + c)),
      columns, rows, totals, keyCount: keys.length,
    };
  }

  function renderTable(d) {
    const model = tableModel(d);
    state.tableModel = model;
    el.reportTable.querySelector('caption').textContent = el.rows.options[el.rows.selectedIndex].textContent;
    el.tableNote.textContent = t('tableNote', { from: d.from, to: d.to, tz: d.tz });
    const head = el.reportTable.querySelector('thead'), body = el.reportTable.querySelector('tbody'), foot = el.reportTable.querySelector('tfoot');
    head.innerHTML = body.innerHTML = foot.innerHTML = '';
    const hr = head.insertRow();
    model.headers.forEach((h, i) => hr.append(th(h, 'col', i >= model.keyCount ? 'num' : '')));
    if (model.rows.length === 0) {
      const tr = body.insertRow();
      const c = td(t('noRows'));
      c.colSpan = model.columns.length;
      tr.append(c);
    }
    for (const row of model.rows) {
      const tr = body.insertRow();
      row.forEach((c, i) => tr.append(i === 0 && model.keyCount > 0 ? th(c.text, 'row') : td(c.text, c.num ? 'num' : '')));
    }
    const fr = foot.insertRow();
    model.totals.forEach((c, i) => fr.append(i === 0 ? th(c.text, 'row', c.num ? 'num' : '') : td(c.text, c.num ? 'num' : '')));
  }

  // csvField quotes a field as RFC 4180 asks, and defuses text that a
  // spreadsheet would run as a formula (campaign names are advertisers'
  // free text).
  function csvField(v) {
    let s = String(v);
    if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?%?$/.test(s)) s = "'" + s;
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function downloadCSV() {
    const m = state.tableModel, d = state.data;
    if (!m || !d) return;
    const lines = [m.headers, ...m.rows.map((r) => r.map((c) => c.csv)), m.totals.map((c) => c.csv)];
    // A byte order mark, so that Excel reads the UTF-8 (Japanese) as such.
    const text = '\ufeff' + lines.map((l) => l.map(csvField).join(',')).join('\r\n') + '\r\n';
    const file = 'navad-' + d.from + '-' + d.to + '-' + el.rows.value.replace(',', '-') + '.csv';
    const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = file;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    setStatus(t('downloaded', { file }));
  }

  // ---- Map ----

  // A graticule: lines of latitude and longitude with their values, so that
  // the hexagons have a place even with no base map.
  const Graticule = L.Layer.extend({
    onAdd(map) {
      if (!map.getPane('graticule')) map.createPane('graticule').style.zIndex = 250;
      this._lines = L.layerGroup().addTo(map);
      map.on('moveend resize', this._draw, this);
      this._draw();
    },
    onRemove(map) {
      map.off('moveend resize', this._draw, this);
      this._lines.remove();
    },
    _draw() {
      const map = this._map, b = map.getBounds(), size = map.getSize(), g = this._lines;
      g.clearLayers();
      const s = Math.max(-85, b.getSouth()), n = Math.min(85, b.getNorth()), w = b.getWest(), e = b.getEast();
      // The finest round step that keeps labels apart: about 90 px
      // between meridians (their labels are wide), 45 px between parallels.
      const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30];
      const pick = (degrees, pixels, gap) => steps.find((st) => (st / degrees) * pixels >= gap) || 30;
      const lngStep = pick(e - w, size.x, 90), latStep = pick(n - s, size.y, 45);
      const line = { color: '#9aa5b1', weight: 1, opacity: 0.8, interactive: false, pane: 'graticule' };
      const label = (latlng, text, where) => {
        const icon = L.divIcon({ className: 'graticule-label ' + where, html: '', iconSize: [0, 0] });
        return L.marker(latlng, { icon, interactive: false, keyboard: false, pane: 'graticule' }).on('add', (ev) => {
          const node = ev.target.getElement(), span = document.createElement('span');
          span.textContent = text;
          node.setAttribute('aria-hidden', 'true');
          node.replaceChildren(span);
        });
      };
      const digits = (st) => Math.max(0, Math.ceil(-Math.log10(st) - 1e-9));
      for (let lat = Math.ceil(s / latStep) * latStep; lat <= n; lat += latStep) {
        const v = +lat.toFixed(digits(latStep));
        g.addLayer(L.polyline([[v, w - 360], [v, e + 360]], line));
        g.addLayer(label([v, e], Math.abs(v).toFixed(digits(latStep)) + '°' + (v >= 0 ? 'N' : 'S'), 'east'));
      }
      for (let lng = Math.ceil(w / lngStep) * lngStep; lng <= e; lng += lngStep) {
        const v = +lng.toFixed(digits(lngStep));
        g.addLayer(L.polyline([[-85, v], [85, v]], line));
        const wrapped = ((v + 540) % 360) - 180;
        g.addLayer(label([s, v], Math.abs(wrapped).toFixed(digits(lngStep)) + '°' + (wrapped >= 0 ? 'E' : 'W'), 'south'));
      }
    },
  });

  function ensureMap() {
    if (state.map) return state.map;
    const map = L.map(el.map, { keyboard: true, minZoom: 2, maxZoom: 18, zoomSnap: 0.5 });
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    const tiles = state.config.tiles;
    if (tiles && tiles.url) {
      L.tileLayer(tiles.url, { attribution: escapeHTML(tiles.attribution || ''), maxZoom: 19 }).addTo(map);
    } else {
      new Graticule().addTo(map);
    }
    map.setView([35.68, 139.72], 11);
    el.map.setAttribute('role', 'region');
    el.map.setAttribute('aria-describedby', 'map-help');
    state.map = map;
    return map;
  }

  function escapeHTML(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  // classes splits 1..max into at most six ranges of whole numbers, one a
  // colour of the ramp; zero is its own class.
  function classes(max) {
    const out = [];
    for (let i = 0; i < 6; i++) {
      const lo = Math.floor((max * i) / 6) + 1, hi = Math.floor((max * (i + 1)) / 6);
      if (lo <= hi) out.push({ lo, hi, colour: RAMPS[state.metric][i] });
    }
    return out;
  }

  function fillOf(v, cls) {
    if (!v) return ZERO_FILL;
    for (const c of cls) if (v <= c.hi) return c.colour;
    return cls.length ? cls[cls.length - 1].colour : ZERO_FILL;
  }

  function renderMap(d) {
    const map = ensureMap();
    map.invalidateSize();
    const features = d.cells.features || [];
    const metric = state.metric;
    const max = features.reduce((m, f) => Math.max(m, f.properties[metric] || 0), 0);
    const cls = classes(max);
    el.map.setAttribute('aria-label', t('mapLabel', { metric: t('m.' + metric) }));

    const fresh = !state.hexLayer || state.hexLayer.navadData !== d.cells;
    if (state.hexLayer) state.hexLayer.remove();
    state.hexLayer = L.geoJSON(d.cells, {
      style: (f) => ({
        color: '#243b53', weight: 1, opacity: 0.7,
        fillColor: fillOf(f.properties[metric], cls), fillOpacity: 0.8,
        className: 'navad-cell',
      }),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        const lines = [`<strong>${escapeHTML(p.cell || f.id || '')}</strong>`]
          .concat(COUNTS.map((m) => `${escapeHTML(t('m.' + m))}: ${fmtInt(p[m] || 0)}`))
          .concat([`${escapeHTML(t('m.ctr'))}: ${fmtRate(p.ctr || 0)}`, `${escapeHTML(t('m.visit_rate'))}: ${fmtRate(p.visit_rate || 0)}`]);
        layer.bindTooltip(lines.join('<br>'), { sticky: true });
      },
    }).addTo(map);
    state.hexLayer.navadData = d.cells;
    if (fresh && features.length > 0) map.fitBounds(state.hexLayer.getBounds(), { padding: [16, 16], maxZoom: 15 });

    // Legend.
    el.mapLegend.innerHTML = '';
    const key = (colour, text) => {
      const k = document.createElement('span');
      k.className = 'key';
      const box = document.createElement('span');
      box.className = 'box';
      box.style.background = colour;
      k.append(box, text);
      el.mapLegend.append(k);
    };
    const title = document.createElement('strong');
    title.textContent = t('m.' + metric) + ':';
    el.mapLegend.append(title);
    key(ZERO_FILL, '0');
    for (const c of cls) key(c.colour, c.lo === c.hi ? fmtInt(c.lo) : fmtInt(c.lo) + '–' + fmtInt(c.hi));

    // The areas as a table, most of the metric first.
    const sorted = [...features].sort((a, b) => (b.properties[metric] || 0) - (a.properties[metric] || 0) || String(a.id).localeCompare(String(b.id)));
    el.cellsTable.querySelector('caption').textContent = features.length
      ? t('cellsCaption', { n: fmtInt(features.length), metric: t('m.' + metric) })
      : t('noCells');
    const head = el.cellsTable.querySelector('thead'), body = el.cellsTable.querySelector('tbody');
    head.innerHTML = body.innerHTML = '';
    const hr = head.insertRow();
    hr.append(th(t('col.cell'), 'col'));
    for (const m of COUNTS) hr.append(th(t('m.' + m), 'col', 'num'));
    for (const f of sorted) {
      const tr = body.insertRow();
      tr.append(th(String(f.properties.cell || f.id || ''), 'row'));
      for (const m of COUNTS) tr.append(td(fmtInt(f.properties[m] || 0), 'num'));
    }
  }

  // ---- Wiring ----

  async function loadConfig() {
    try {
      const res = await fetch('config.json', { cache: 'no-store', credentials: 'omit' });
      if (res.ok) state.config = await res.json();
    } catch (e) {
      // No configuration: no base map, which is the default anyway.
    }
  }

  function init() {
    const saved = sessionStorage.getItem(LANG_STORAGE);
    setLanguage(saved || ((navigator.language || '').toLowerCase().startsWith('ja') ? 'ja' : 'en'));
    el.lang.addEventListener('click', () => setLanguage(state.lang === 'ja' ? 'en' : 'ja'));
    el.keyForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const key = el.key.value.trim();
      if (key) connect(key);
    });
    el.forget.addEventListener('click', () => forget(true));
    el.filters.addEventListener('submit', (e) => {
      e.preventDefault();
      show();
    });
    el.download.addEventListener('click', downloadCSV);
    for (const radio of document.querySelectorAll('input[name=metric]')) {
      radio.addEventListener('change', () => {
        if (!radio.checked) return;
        state.metric = radio.value;
        if (state.data) renderMap(state.data);
      });
    }
    if (window.ResizeObserver) new ResizeObserver(resizeChart).observe(el.chart);
    else window.addEventListener('resize', resizeChart);

    loadConfig().then(() => {
      const key = sessionStorage.getItem(KEY_STORAGE);
      if (key) {
        el.key.value = key;
        connect(key);
      }
    });
  }

  init();
})();
