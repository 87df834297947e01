-- 0010: metadata of the published layers (the catalogue and the DCAT feed read it, gis/metadata.py).
--
-- Per layer (gis_meta.collections): keywords by language, a licence identifier and URL, source,
-- lineage statement and the ingest kinds whose runs (ingest.runs) load the layer, update frequency,
-- point of contact, themes. Per field (the "fields" rules): description_en / description_vi beside
-- title and unit. One row of gis_meta.publisher describes the catalogue itself and its publisher;
-- a layer without a contact of its own has the publisher's.
--
-- The id "catalog" is reserved: /collections/catalog is the records catalogue (api/records.py).

ALTER TABLE gis_meta.collections
    ADD COLUMN keywords_en      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN keywords_vi      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN licence_id       text,     -- SPDX identifier or expression, or 'other' (see licence)
    ADD COLUMN licence_url      text,
    ADD COLUMN source_en        text,     -- where the data comes from
    ADD COLUMN source_vi        text,
    ADD COLUMN source_urls      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN lineage_en       text,     -- how it was processed (the runs themselves: ingest.runs)
    ADD COLUMN lineage_vi       text,
    ADD COLUMN ingest_kinds     text[] NOT NULL DEFAULT '{}',  -- ingest.runs.kind values that load it
    ADD COLUMN update_frequency text NOT NULL DEFAULT 'unknown',
    ADD COLUMN contact_name     text,
    ADD COLUMN contact_email    text,
    ADD COLUMN contact_organisation text,
    ADD COLUMN iso_topics       text[] NOT NULL DEFAULT '{}',  -- ISO 19115 MD_TopicCategoryCode
    ADD COLUMN eu_themes        text[] NOT NULL DEFAULT '{}',  -- EU data-theme vocabulary codes
    ADD CONSTRAINT collections_id_not_reserved CHECK (id <> 'catalog'),
    ADD CONSTRAINT collections_update_frequency_check CHECK (update_frequency IN (
        'continual', 'daily', 'weekly', 'fortnightly', 'monthly', 'quarterly', 'biannually', 'annually',
        'asNeeded', 'irregular', 'notPlanned', 'unknown')),
    ADD CONSTRAINT collections_contact_email_check CHECK (contact_email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    ADD CONSTRAINT collections_licence_url_check CHECK (licence_url ~ '^https?://'),
    ADD CONSTRAINT collections_eu_themes_check CHECK (eu_themes <@ ARRAY['AGRI', 'ECON', 'EDUC', 'ENER',
        'ENVI', 'GOVE', 'HEAL', 'INTR', 'JUST', 'OP_DATPRO', 'REGI', 'SOCI', 'TECH', 'TRAN']);

-- The catalogue and its publisher (exactly one row).
CREATE TABLE gis_meta.publisher (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    title_vi       text NOT NULL,
    title_en       text NOT NULL,
    description_vi text,
    description_en text,
    name           text NOT NULL,      -- the publishing organisation
    contact_name   text NOT NULL,
    contact_email  text NOT NULL CHECK (contact_email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    homepage       text CHECK (homepage ~ '^https?://'),
    licence_id     text,               -- licence of the metadata itself
    licence_url    text CHECK (licence_url ~ '^https?://')
);

-- A placeholder contact of the project's open-data team: "hcmc-gis.example" is a reserved
-- (RFC 2606) domain, so nobody can mistake it for a real address. A deployment replaces it with
-- its own: UPDATE gis_meta.publisher SET contact_email = ..., and the layers' contact_* columns.
INSERT INTO gis_meta.publisher (title_vi, title_en, description_vi, description_en, name, contact_name,
                                contact_email, homepage, licence_id, licence_url) VALUES
('Danh mục dữ liệu GIS mở TP. Hồ Chí Minh', 'Ho Chi Minh City open GIS data catalogue',
 'Các lớp dữ liệu công khai của nền tảng GIS mở: đơn vị hành chính, thửa đất (không có thông tin chủ sử dụng), quy hoạch, công trình, giao thông, điểm quan tâm.',
 'The public layers of the open GIS platform: administrative units, cadastral parcels (no owner information), zoning plans, buildings, roads, points of interest.',
 'HCMC open GIS platform (hcmc-gis project)', 'Open-data team, hcmc-gis project', 'opendata@hcmc-gis.example',
 NULL, 'CC0-1.0', 'https://creativecommons.org/publicdomain/zero/1.0/');

-- --- the nine layers of 0004 ------------------------------------------------------------------
UPDATE gis_meta.collections c SET
    keywords_en = v.kw_en, keywords_vi = v.kw_vi, licence = v.licence, licence_id = v.licence_id,
    licence_url = v.licence_url, source_en = v.src_en, source_vi = v.src_vi, source_urls = v.src_urls,
    lineage_en = v.lin_en, lineage_vi = v.lin_vi, ingest_kinds = v.kinds, update_frequency = v.freq,
    contact_name = 'Open-data team, hcmc-gis project', contact_email = 'opendata@hcmc-gis.example',
    contact_organisation = 'HCMC open GIS platform (hcmc-gis project)',
    iso_topics = v.topics, eu_themes = v.themes
FROM (VALUES
('wards-2025',
 '{administrative units,wards,communes,boundaries,Ho Chi Minh City,2025 reorganisation}'::text[],
 '{đơn vị hành chính,phường,xã,ranh giới,TP. Hồ Chí Minh,sắp xếp 2025}'::text[],
 'MIT (vietnamese-provinces-database); boundaries derived from sapnhap.bando.com.vn (NXB Tài nguyên - Môi trường và Bản đồ Việt Nam), whose terms also apply',
 'MIT', 'https://spdx.org/licenses/MIT.html',
 'Ward boundaries and codes of the 168 communes, wards and special zone of HCMC from 1 July 2025: thanglequoc/vietnamese-provinces-database (geometry derived from sapnhap.bando.com.vn); ward population and area: kraemer-lab/geoglue (geoboundaries HCM-2).',
 'Ranh giới và mã của 168 phường, xã, đặc khu TP.HCM từ 01/07/2025: thanglequoc/vietnamese-provinces-database (hình học lấy từ sapnhap.bando.com.vn); dân số và diện tích phường: kraemer-lab/geoglue (geoboundaries HCM-2).',
 '{https://github.com/thanglequoc/vietnamese-provinces-database,https://sapnhap.bando.com.vn,https://github.com/kraemer-lab/geoglue}'::text[],
 'Loaded by `gis ingest admin` (mapping presets vn-wards-2025, geoglue-wards-2025): names stored as NFC Unicode, geometries made valid and stored in EPSG:4326, validity from 2025-07-01; each run is listed in the lineage.',
 'Nạp bằng `gis ingest admin` (mẫu ánh xạ vn-wards-2025, geoglue-wards-2025): tên chuẩn hóa Unicode NFC, hình học hợp lệ, lưu ở EPSG:4326, hiệu lực từ 01/07/2025; mỗi lần nạp được liệt kê trong phần nguồn gốc.',
 '{admin}'::text[], 'asNeeded', '{boundaries}'::text[], '{GOVE,REGI}'::text[]),
('wards-2019',
 '{administrative units,wards,census,population,2019,boundaries}'::text[],
 '{đơn vị hành chính,phường,xã,tổng điều tra,dân số,2019,ranh giới}'::text[],
 'No licence stated by the source (hgscarlette/vn-demographic; boundaries from CSL@HCMC CityScope); population: GSO Population and Housing Census 2019',
 'other', NULL,
 'Ward boundaries before the 2025 reorganisation from the CSL@HCMC CityScope files in hgscarlette/vn-demographic, with the population of the 2019 Population and Housing Census (General Statistics Office of Viet Nam).',
 'Ranh giới phường, xã trước sắp xếp 2025 từ dữ liệu CityScope của CSL@HCMC (hgscarlette/vn-demographic), dân số Tổng điều tra dân số và nhà ở 2019 (Tổng cục Thống kê).',
 '{https://github.com/hgscarlette/vn-demographic}'::text[],
 'Loaded by `gis ingest admin` (mapping preset cityscope-wards-2019): names stored as NFC Unicode, geometries made valid and stored in EPSG:4326, valid until 2025-07-01.',
 'Nạp bằng `gis ingest admin` (mẫu ánh xạ cityscope-wards-2019): tên chuẩn hóa Unicode NFC, hình học hợp lệ, lưu ở EPSG:4326, hiệu lực đến 01/07/2025.',
 '{admin}'::text[], 'notPlanned', '{boundaries,society}'::text[], '{GOVE,REGI,SOCI}'::text[]),
('districts-2019',
 '{administrative units,districts,census,population,2019,boundaries}'::text[],
 '{đơn vị hành chính,quận,huyện,tổng điều tra,dân số,2019,ranh giới}'::text[],
 'No licence stated by the source (hgscarlette/vn-demographic; boundaries from CSL@HCMC CityScope); population: GSO Population and Housing Census 2019',
 'other', NULL,
 'District boundaries (abolished on 1 July 2025) from the CSL@HCMC CityScope files in hgscarlette/vn-demographic, with the population of the 2019 Population and Housing Census (General Statistics Office of Viet Nam).',
 'Ranh giới quận, huyện (bãi bỏ từ 01/07/2025) từ dữ liệu CityScope của CSL@HCMC (hgscarlette/vn-demographic), dân số Tổng điều tra dân số và nhà ở 2019 (Tổng cục Thống kê).',
 '{https://github.com/hgscarlette/vn-demographic}'::text[],
 'Loaded by `gis ingest admin` (mapping preset cityscope-districts-2019): names stored as NFC Unicode, geometries made valid and stored in EPSG:4326, valid until 2025-07-01.',
 'Nạp bằng `gis ingest admin` (mẫu ánh xạ cityscope-districts-2019): tên chuẩn hóa Unicode NFC, hình học hợp lệ, lưu ở EPSG:4326, hiệu lực đến 01/07/2025.',
 '{admin}'::text[], 'notPlanned', '{boundaries,society}'::text[], '{GOVE,REGI,SOCI}'::text[]),
('parcels',
 '{cadastre,cadastral parcels,land use,land administration}'::text[],
 '{địa chính,thửa đất,mục đích sử dụng đất,quản lý đất đai}'::text[],
 'CC0-1.0 for the synthetic demo cadastre of gis.sample; a deployment that loads the cadastral database of the Land Registration Office sets that data''s licence here',
 'CC0-1.0', 'https://creativecommons.org/publicdomain/zero/1.0/',
 'The synthetic demo cadastre of the platform (gis.sample: made-up parcels in VN-2000 / TM-3 105-45 on real ward codes of Phường An Khánh, Thủ Thiêm; no parcel or owner exists); the model is that of the cadastral database of the Land Registration Office (Văn phòng đăng ký đất đai).',
 'Dữ liệu địa chính mẫu tổng hợp của nền tảng (gis.sample: thửa đất giả lập theo VN-2000 / TM-3 105-45 trên mã phường thật của Phường An Khánh, Thủ Thiêm; không thửa đất hay chủ sử dụng nào có thật); mô hình theo cơ sở dữ liệu địa chính của Văn phòng đăng ký đất đai.',
 '{}'::text[],
 'Loaded by `gis ingest cadastral` (mapping preset vn-cadastral): converted from VN-2000 with the 7-parameter shift of Circular 973/2001/TT-TCĐC, geometries validated, land-use codes checked against Circulars 25/2014 and 08/2024; a changed parcel gets a new version, splits and merges are recorded; owner names and identity numbers are stored apart (private schema) and never published.',
 'Nạp bằng `gis ingest cadastral` (mẫu ánh xạ vn-cadastral): chuyển từ VN-2000 bằng 7 tham số của Quyết định 973/2001/TT-TCĐC, kiểm tra hình học, mã mục đích sử dụng theo Thông tư 25/2014 và 08/2024; thửa thay đổi có phiên bản mới, tách hợp thửa được ghi lại; tên và số giấy tờ của chủ sử dụng lưu riêng và không bao giờ công bố.',
 '{cadastral}'::text[], 'asNeeded', '{planningCadastre}'::text[], '{REGI}'::text[]),
('parcel-history',
 '{cadastre,cadastral parcels,history,land use}'::text[],
 '{địa chính,thửa đất,lịch sử,biến động}'::text[],
 'CC0-1.0 for the synthetic demo cadastre of gis.sample; a deployment that loads the cadastral database of the Land Registration Office sets that data''s licence here',
 'CC0-1.0', 'https://creativecommons.org/publicdomain/zero/1.0/',
 'The synthetic demo cadastre of the platform (gis.sample, two editions: 2024 and a 2025 edition with a split parcel); the model is that of the cadastral database of the Land Registration Office (Văn phòng đăng ký đất đai).',
 'Dữ liệu địa chính mẫu tổng hợp của nền tảng (gis.sample, hai lần cập nhật: 2024 và 2025 có tách thửa); mô hình theo cơ sở dữ liệu địa chính của Văn phòng đăng ký đất đai.',
 '{}'::text[],
 'Every version of every parcel kept by `gis ingest cadastral`: a changed parcel closes its old version (valid_to) and opens a new one; owner data is never published.',
 'Mọi phiên bản của thửa đất do `gis ingest cadastral` lưu: thửa thay đổi đóng phiên bản cũ (valid_to) và mở phiên bản mới; thông tin chủ sử dụng không bao giờ công bố.',
 '{cadastral}'::text[], 'asNeeded', '{planningCadastre}'::text[], '{REGI}'::text[]),
('planning-lots',
 '{zoning plan,land-use plan,urban planning,floor area ratio,building coverage}'::text[],
 '{quy hoạch,quy hoạch phân khu,quy hoạch chi tiết,hệ số sử dụng đất,mật độ xây dựng}'::text[],
 'CC0-1.0 for the synthetic demo plan of gis.sample; a deployment that loads the plans of the Department of Planning and Architecture sets their licence here',
 'CC0-1.0', 'https://creativecommons.org/publicdomain/zero/1.0/',
 'The synthetic demo zoning plan of the platform (gis.sample, made-up lots and regulations); the model is that of the 1/2000 and 1/500 plans approved by the HCMC Department of Planning and Architecture (Sở Quy hoạch - Kiến trúc).',
 'Đồ án quy hoạch mẫu tổng hợp của nền tảng (gis.sample, lô và chỉ tiêu giả lập); mô hình theo các đồ án 1/2000 và 1/500 do Sở Quy hoạch - Kiến trúc TP.HCM phê duyệt.',
 '{}'::text[],
 'Loaded by `gis ingest planning` (mapping preset vn-zoning-plan): converted from VN-2000, geometries validated, one row per lot joined to its plan (name, level, decision, approval date).',
 'Nạp bằng `gis ingest planning` (mẫu ánh xạ vn-zoning-plan): chuyển từ VN-2000, kiểm tra hình học, mỗi lô gắn với đồ án (tên, cấp, quyết định, ngày phê duyệt).',
 '{planning}'::text[], 'asNeeded', '{planningCadastre}'::text[], '{REGI}'::text[]),
('buildings',
 '{buildings,footprints,building height,storeys}'::text[],
 '{công trình,nhà,chiều cao,số tầng}'::text[],
 'Per feature, see the licence field: CC0-1.0 for the synthetic demo data of gis.sample, ODbL-1.0 for features from OpenStreetMap',
 'other', NULL,
 'The synthetic demo buildings of gis.sample; the platform also loads OpenStreetMap buildings (via the ohsome API) and the CSL@HCMC building files (source field of each feature).',
 'Công trình mẫu tổng hợp của gis.sample; nền tảng cũng nạp công trình từ OpenStreetMap (qua ohsome API) và dữ liệu công trình của CSL@HCMC (trường nguồn của từng đối tượng).',
 '{https://www.openstreetmap.org/copyright,https://github.com/csl-hcmc/SaiGon-Peninsula}'::text[],
 'Loaded by `gis ingest buildings` (mapping presets osm-buildings, csl-buildings, csl-tanthuan-buildings): geometries validated and stored in EPSG:4326, one row per (source, source id).',
 'Nạp bằng `gis ingest buildings` (mẫu ánh xạ osm-buildings, csl-buildings, csl-tanthuan-buildings): kiểm tra hình học, lưu ở EPSG:4326, mỗi (nguồn, mã nguồn) một dòng.',
 '{buildings}'::text[], 'asNeeded', '{structure}'::text[], '{REGI}'::text[]),
('roads',
 '{roads,streets,transport,road network}'::text[],
 '{đường giao thông,đường phố,giao thông,mạng lưới đường}'::text[],
 'Per feature, see the licence field: CC0-1.0 for the synthetic demo data of gis.sample, ODbL-1.0 for features from OpenStreetMap',
 'other', NULL,
 'The synthetic demo streets of gis.sample; the platform also loads OpenStreetMap road segments (UrbanReflex open data) and the CSL@HCMC road files (source field of each feature).',
 'Đường mẫu tổng hợp của gis.sample; nền tảng cũng nạp đoạn đường OpenStreetMap (dữ liệu mở UrbanReflex) và dữ liệu đường của CSL@HCMC (trường nguồn của từng đối tượng).',
 '{https://www.openstreetmap.org/copyright,https://github.com/minhe51805/UrbanReflex}'::text[],
 'Loaded by `gis ingest roads` (mapping presets osm-roads, urbanreflex-roads, csl-roads): geometries validated and stored in EPSG:4326 as multi-lines, names stored as NFC Unicode.',
 'Nạp bằng `gis ingest roads` (mẫu ánh xạ osm-roads, urbanreflex-roads, csl-roads): kiểm tra hình học, lưu ở EPSG:4326, tên chuẩn hóa Unicode NFC.',
 '{roads}'::text[], 'asNeeded', '{transportation}'::text[], '{TRAN}'::text[]),
('poi',
 '{points of interest,hospitals,clinics,schools,markets,health,education}'::text[],
 '{điểm quan tâm,bệnh viện,phòng khám,trường học,chợ,y tế,giáo dục}'::text[],
 'Per feature, see the licence field: CC0-1.0 for the synthetic demo data of gis.sample, ODbL-1.0 for features from OpenStreetMap',
 'other', NULL,
 'The synthetic demo facilities of gis.sample; the platform also loads OpenStreetMap points of interest (UrbanReflex open data, ohsome API) and the CSL@HCMC facility files (source field of each feature).',
 'Điểm quan tâm mẫu tổng hợp của gis.sample; nền tảng cũng nạp điểm quan tâm OpenStreetMap (dữ liệu mở UrbanReflex, ohsome API) và dữ liệu cơ sở của CSL@HCMC (trường nguồn của từng đối tượng).',
 '{https://www.openstreetmap.org/copyright,https://github.com/minhe51805/UrbanReflex}'::text[],
 'Loaded by `gis ingest poi` (mapping presets osm-poi, urbanreflex-poi, csl-poi): categories normalised (hospital, clinic, school, market...), points stored in EPSG:4326.',
 'Nạp bằng `gis ingest poi` (mẫu ánh xạ osm-poi, urbanreflex-poi, csl-poi): chuẩn hóa loại (bệnh viện, phòng khám, trường học, chợ...), lưu ở EPSG:4326.',
 '{poi}'::text[], 'asNeeded', '{health,location,society}'::text[], '{HEAL,EDUC,REGI}'::text[])
) AS v(id, kw_en, kw_vi, licence, licence_id, licence_url, src_en, src_vi, src_urls, lin_en, lin_vi, kinds,
       freq, topics, themes)
WHERE c.id = v.id;

-- --- field descriptions (merged into the existing field rules) --------------------------------
UPDATE gis_meta.collections c SET fields = (
    SELECT jsonb_object_agg(e.key, CASE WHEN p.patch ? e.key THEN e.value || (p.patch -> e.key) ELSE e.value END)
    FROM jsonb_each(c.fields) e)
FROM (
    SELECT d.cid, jsonb_object_agg(d.field, jsonb_build_object('description_en', d.en, 'description_vi', d.vi)) AS patch
    FROM (VALUES
    ('wards-2025', 'code', 'Commune code of the General Statistics Office (mã xã, 5 digits).', 'Mã đơn vị hành chính cấp xã của Tổng cục Thống kê (5 chữ số).'),
    ('wards-2025', 'unit_type', 'Phường (ward), Xã (commune) or Đặc khu (special zone).', 'Phường, Xã hoặc Đặc khu.'),
    ('wards-2025', 'population', 'Resident population in the year population_year.', 'Dân số thường trú năm population_year.'),
    ('wards-2025', 'area_km2', 'Area declared by the source.', 'Diện tích theo nguồn.'),
    ('wards-2025', 'valid_from', 'First day the unit exists (inclusive).', 'Ngày bắt đầu hiệu lực (tính cả ngày này).'),
    ('wards-2025', 'valid_to', 'Day the unit ceased to exist (exclusive); empty while in force.', 'Ngày hết hiệu lực (không tính); trống khi còn hiệu lực.'),
    ('wards-2019', 'code', 'Ward code of the General Statistics Office before 2025.', 'Mã phường, xã của Tổng cục Thống kê trước 2025.'),
    ('wards-2019', 'parent_code', 'Code of the district the ward belonged to.', 'Mã quận, huyện chứa phường, xã.'),
    ('wards-2019', 'population', 'Population of the 2019 Population and Housing Census.', 'Dân số Tổng điều tra dân số và nhà ở 2019.'),
    ('wards-2019', 'valid_to', 'Day the unit ceased to exist (exclusive): 2025-07-01.', 'Ngày hết hiệu lực (không tính): 01/07/2025.'),
    ('districts-2019', 'code', 'District code of the General Statistics Office.', 'Mã quận, huyện của Tổng cục Thống kê.'),
    ('districts-2019', 'population', 'Population of the 2019 Population and Housing Census.', 'Dân số Tổng điều tra dân số và nhà ở 2019.'),
    ('parcels', 'commune_code', 'Commune code (mã xã) of the parcel.', 'Mã xã của thửa đất.'),
    ('parcels', 'sheet_no', 'Cadastral map sheet number (số tờ bản đồ) within the commune.', 'Số tờ bản đồ địa chính trong xã.'),
    ('parcels', 'parcel_no', 'Parcel number (số thửa) within the map sheet.', 'Số thửa trong tờ bản đồ.'),
    ('parcels', 'land_use', 'Land-use code of Circulars 25/2014 and 08/2024 (ODT, ONT, LUC, CLN...).', 'Mã mục đích sử dụng đất theo Thông tư 25/2014 và 08/2024 (ODT, ONT, LUC, CLN...).'),
    ('parcels', 'legal_area_m2', 'Area recorded in the cadastral register (not computed from the geometry).', 'Diện tích pháp lý ghi trong sổ địa chính (không tính từ hình học).'),
    ('parcels', 'owner_type', 'Type of land user (GDC households and individuals, TKT economic organisation...), never the owner.', 'Loại đối tượng sử dụng đất (GDC hộ gia đình, cá nhân; TKT tổ chức kinh tế...), không phải tên chủ sử dụng.'),
    ('parcels', 'valid_from', 'Start of this version of the parcel.', 'Thời điểm bắt đầu phiên bản này của thửa đất.'),
    ('parcel-history', 'land_use', 'Land-use code of Circulars 25/2014 and 08/2024.', 'Mã mục đích sử dụng đất theo Thông tư 25/2014 và 08/2024.'),
    ('parcel-history', 'legal_area_m2', 'Area recorded in the cadastral register.', 'Diện tích pháp lý ghi trong sổ địa chính.'),
    ('parcel-history', 'owner_type', 'Type of land user, never the owner.', 'Loại đối tượng sử dụng đất, không phải tên chủ sử dụng.'),
    ('parcel-history', 'valid_from', 'Start of this version (inclusive).', 'Thời điểm bắt đầu phiên bản (tính cả).'),
    ('parcel-history', 'valid_to', 'End of this version (exclusive); empty while in force.', 'Thời điểm kết thúc phiên bản (không tính); trống khi còn hiệu lực.'),
    ('planning-lots', 'decision_no', 'Number of the decision approving the plan.', 'Số quyết định phê duyệt đồ án.'),
    ('planning-lots', 'lot_code', 'Lot code (ký hiệu lô) in the plan.', 'Ký hiệu lô trong đồ án.'),
    ('planning-lots', 'max_storeys', 'Maximum number of storeys allowed.', 'Số tầng cao tối đa cho phép.'),
    ('planning-lots', 'max_height_m', 'Maximum building height allowed.', 'Chiều cao công trình tối đa cho phép.'),
    ('planning-lots', 'max_far', 'Maximum floor area ratio (total floor area / lot area).', 'Hệ số sử dụng đất tối đa (tổng diện tích sàn / diện tích lô).'),
    ('planning-lots', 'max_coverage', 'Maximum building coverage (footprint / lot area, 0 to 1).', 'Mật độ xây dựng tối đa (diện tích chiếm đất / diện tích lô, từ 0 đến 1).'),
    ('planning-lots', 'max_density_pph', 'Maximum population density.', 'Mật độ dân số tối đa.'),
    ('planning-lots', 'area_m2', 'Lot area declared by the plan.', 'Diện tích lô theo đồ án.'),
    ('buildings', 'source', 'Where the feature comes from (osm, csl, sample...).', 'Nguồn của đối tượng (osm, csl, sample...).'),
    ('buildings', 'height_m', 'Building height above ground.', 'Chiều cao công trình so với mặt đất.'),
    ('buildings', 'storeys', 'Number of storeys above ground.', 'Số tầng nổi.'),
    ('buildings', 'licence', 'Licence of this feature (SPDX identifier).', 'Giấy phép của đối tượng (mã SPDX).'),
    ('roads', 'road_class', 'OpenStreetMap highway class (primary, secondary, residential...).', 'Cấp đường theo OpenStreetMap (primary, secondary, residential...).'),
    ('roads', 'width_m', 'Carriageway width.', 'Bề rộng mặt đường.'),
    ('roads', 'maxspeed_kmh', 'Speed limit.', 'Tốc độ tối đa cho phép.'),
    ('roads', 'licence', 'Licence of this feature (SPDX identifier).', 'Giấy phép của đối tượng (mã SPDX).'),
    ('poi', 'category', 'Normalised category: hospital, clinic, school, university, market...', 'Loại đã chuẩn hóa: bệnh viện, phòng khám, trường học, đại học, chợ...'),
    ('poi', 'capacity', 'Beds, pupils... where the source gives them.', 'Số giường bệnh, học sinh... nếu nguồn có.'),
    ('poi', 'licence', 'Licence of this feature (SPDX identifier).', 'Giấy phép của đối tượng (mã SPDX).')
    ) AS d(cid, field, en, vi)
    GROUP BY d.cid
) p
WHERE c.id = p.cid;
