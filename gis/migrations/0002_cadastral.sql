-- 0002: cadastral parcels in the Vietnamese model, with history, lineage and owners kept apart.
CREATE SCHEMA IF NOT EXISTS cadastral;

-- Land-use codes (mục đích sử dụng đất): the codes of Circular 25/2014/TT-BTNMT still found in cadastral
-- files, and the additions of Circular 08/2024/TT-BTNMT. Extend with a new migration, never by hand.
CREATE TABLE cadastral.land_use_codes (
    code     text PRIMARY KEY CHECK (code ~ '^[A-Z]{2,4}$'),
    name_vi  text NOT NULL,
    name_en  text NOT NULL,
    category text NOT NULL CHECK (category IN ('agricultural', 'non-agricultural', 'unused'))
);
INSERT INTO cadastral.land_use_codes (code, name_vi, name_en, category) VALUES
 ('LUC', 'Đất chuyên trồng lúa', 'Specialised paddy land', 'agricultural'),
 ('LUK', 'Đất trồng lúa còn lại', 'Other paddy land', 'agricultural'),
 ('LUN', 'Đất trồng lúa nương', 'Upland rice land', 'agricultural'),
 ('BHK', 'Đất bằng trồng cây hàng năm khác', 'Flat land for other annual crops', 'agricultural'),
 ('NHK', 'Đất nương rẫy trồng cây hàng năm khác', 'Swidden land for other annual crops', 'agricultural'),
 ('HNK', 'Đất trồng cây hàng năm khác', 'Other annual crops land', 'agricultural'),
 ('CLN', 'Đất trồng cây lâu năm', 'Perennial crops land', 'agricultural'),
 ('RSX', 'Đất rừng sản xuất', 'Production forest', 'agricultural'),
 ('RPH', 'Đất rừng phòng hộ', 'Protection forest', 'agricultural'),
 ('RDD', 'Đất rừng đặc dụng', 'Special-use forest', 'agricultural'),
 ('NTS', 'Đất nuôi trồng thủy sản', 'Aquaculture land', 'agricultural'),
 ('CNT', 'Đất chăn nuôi tập trung', 'Concentrated livestock land', 'agricultural'),
 ('LMU', 'Đất làm muối', 'Salt-making land', 'agricultural'),
 ('NKH', 'Đất nông nghiệp khác', 'Other agricultural land', 'agricultural'),
 ('ONT', 'Đất ở tại nông thôn', 'Rural residential land', 'non-agricultural'),
 ('ODT', 'Đất ở tại đô thị', 'Urban residential land', 'non-agricultural'),
 ('TSC', 'Đất xây dựng trụ sở cơ quan', 'Government offices', 'non-agricultural'),
 ('TSK', 'Đất xây dựng trụ sở của tổ chức sự nghiệp', 'Offices of public service organisations', 'non-agricultural'),
 ('DTS', 'Đất xây dựng trụ sở của tổ chức sự nghiệp', 'Offices of public service organisations (2014 code)', 'non-agricultural'),
 ('CQP', 'Đất quốc phòng', 'Defence land', 'non-agricultural'),
 ('CAN', 'Đất an ninh', 'Security land', 'non-agricultural'),
 ('DVH', 'Đất xây dựng cơ sở văn hóa', 'Cultural facilities', 'non-agricultural'),
 ('DXH', 'Đất xây dựng cơ sở dịch vụ xã hội', 'Social service facilities', 'non-agricultural'),
 ('DYT', 'Đất xây dựng cơ sở y tế', 'Health facilities', 'non-agricultural'),
 ('DGD', 'Đất xây dựng cơ sở giáo dục và đào tạo', 'Education and training facilities', 'non-agricultural'),
 ('DTT', 'Đất xây dựng cơ sở thể dục thể thao', 'Sports facilities', 'non-agricultural'),
 ('DKH', 'Đất xây dựng cơ sở khoa học và công nghệ', 'Science and technology facilities', 'non-agricultural'),
 ('DMT', 'Đất xây dựng cơ sở môi trường', 'Environmental facilities', 'non-agricultural'),
 ('DKT', 'Đất xây dựng cơ sở khí tượng thủy văn', 'Hydro-meteorological facilities', 'non-agricultural'),
 ('DNG', 'Đất xây dựng cơ sở ngoại giao', 'Diplomatic facilities', 'non-agricultural'),
 ('DSK', 'Đất xây dựng công trình sự nghiệp khác', 'Other public service works', 'non-agricultural'),
 ('SKK', 'Đất khu công nghiệp', 'Industrial park', 'non-agricultural'),
 ('SKN', 'Đất cụm công nghiệp', 'Industrial cluster', 'non-agricultural'),
 ('SKT', 'Đất khu chế xuất', 'Export processing zone', 'non-agricultural'),
 ('TMD', 'Đất thương mại, dịch vụ', 'Commercial and services land', 'non-agricultural'),
 ('SKC', 'Đất cơ sở sản xuất phi nông nghiệp', 'Non-agricultural production', 'non-agricultural'),
 ('SKS', 'Đất sử dụng cho hoạt động khoáng sản', 'Mining land', 'non-agricultural'),
 ('SKX', 'Đất sản xuất vật liệu xây dựng, làm đồ gốm', 'Building materials and ceramics', 'non-agricultural'),
 ('DGT', 'Đất công trình giao thông', 'Transport works', 'non-agricultural'),
 ('DTL', 'Đất công trình thủy lợi', 'Irrigation works', 'non-agricultural'),
 ('DCK', 'Đất công trình cấp nước, thoát nước', 'Water supply and drainage works', 'non-agricultural'),
 ('DPC', 'Đất công trình phòng, chống thiên tai', 'Disaster prevention works', 'non-agricultural'),
 ('DDD', 'Đất có di tích lịch sử - văn hóa, danh lam thắng cảnh, di sản thiên nhiên', 'Heritage sites', 'non-agricultural'),
 ('DDT', 'Đất có di tích lịch sử - văn hóa', 'Historical-cultural relics (2014 code)', 'non-agricultural'),
 ('DDL', 'Đất có danh lam thắng cảnh', 'Scenic spots (2014 code)', 'non-agricultural'),
 ('DRA', 'Đất công trình xử lý chất thải', 'Waste treatment works', 'non-agricultural'),
 ('DNL', 'Đất công trình năng lượng, chiếu sáng công cộng', 'Energy and public lighting works', 'non-agricultural'),
 ('DBV', 'Đất công trình bưu chính, viễn thông, công nghệ thông tin', 'Post and telecommunications works', 'non-agricultural'),
 ('DCH', 'Đất chợ dân sinh, chợ đầu mối', 'Markets', 'non-agricultural'),
 ('DKV', 'Đất khu vui chơi, giải trí công cộng, sinh hoạt cộng đồng', 'Public recreation and community land', 'non-agricultural'),
 ('DSH', 'Đất sinh hoạt cộng đồng', 'Community activity land (2014 code)', 'non-agricultural'),
 ('TON', 'Đất cơ sở tôn giáo', 'Religious establishments', 'non-agricultural'),
 ('TIN', 'Đất cơ sở tín ngưỡng', 'Belief establishments', 'non-agricultural'),
 ('NTD', 'Đất nghĩa trang, nhà tang lễ, cơ sở hỏa táng; đất cơ sở lưu giữ tro cốt', 'Cemeteries and funeral facilities', 'non-agricultural'),
 ('SON', 'Đất có mặt nước chuyên dùng dạng sông, ngòi, kênh, rạch, suối', 'Rivers and canals', 'non-agricultural'),
 ('MNC', 'Đất có mặt nước chuyên dùng dạng ao, hồ, đầm, phá', 'Ponds, lakes and lagoons', 'non-agricultural'),
 ('PNK', 'Đất phi nông nghiệp khác', 'Other non-agricultural land', 'non-agricultural'),
 ('BCS', 'Đất bằng chưa sử dụng', 'Unused flat land', 'unused'),
 ('DCS', 'Đất đồi núi chưa sử dụng', 'Unused hilly land', 'unused'),
 ('NCS', 'Núi đá không có rừng cây', 'Rocky mountains without forest', 'unused');

-- Land users (đối tượng sử dụng đất), Circular 25/2014 and 08/2024 codes.
CREATE TABLE cadastral.owner_types (
    code    text PRIMARY KEY,
    name_vi text NOT NULL,
    name_en text NOT NULL
);
INSERT INTO cadastral.owner_types (code, name_vi, name_en) VALUES
 ('GDC', 'Hộ gia đình, cá nhân', 'Households and individuals'),
 ('CNV', 'Cá nhân trong nước', 'Domestic individual'),
 ('TKT', 'Tổ chức kinh tế', 'Economic organisation'),
 ('TCN', 'Cơ quan, đơn vị của Nhà nước', 'State agency'),
 ('TSN', 'Tổ chức sự nghiệp công lập', 'Public service organisation'),
 ('TKH', 'Tổ chức khác', 'Other organisation'),
 ('TTG', 'Tổ chức tôn giáo', 'Religious organisation'),
 ('CDS', 'Cộng đồng dân cư', 'Residential community'),
 ('NNG', 'Tổ chức kinh tế có vốn đầu tư nước ngoài', 'Foreign-invested economic organisation'),
 ('TNG', 'Tổ chức nước ngoài có chức năng ngoại giao', 'Foreign diplomatic organisation'),
 ('CNN', 'Người Việt Nam định cư ở nước ngoài', 'Overseas Vietnamese'),
 ('UBS', 'Ủy ban nhân dân cấp xã (quản lý)', 'Commune People''s Committee (managing)'),
 ('TPQ', 'Tổ chức phát triển quỹ đất (quản lý)', 'Land fund development organisation (managing)');

-- Parcels (thửa đất). The natural key of a parcel in force is commune + map sheet + parcel number.
-- History is kept: a changed parcel gets a new row and the old one is closed with valid_to.
CREATE TABLE cadastral.parcels (
    parcel_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune_code  text    NOT NULL,          -- mã xã (GSO)
    sheet_no      integer NOT NULL CHECK (sheet_no > 0),   -- số tờ bản đồ
    parcel_no     integer NOT NULL CHECK (parcel_no > 0),  -- số thửa
    land_use      text    NOT NULL REFERENCES cadastral.land_use_codes (code),
    legal_area_m2 numeric(14, 2) CHECK (legal_area_m2 >= 0),  -- diện tích pháp lý
    address       text,
    owner_type    text    REFERENCES cadastral.owner_types (code),
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,               -- exclusive; NULL while in force
    source        text,
    licence       text,
    run_id        bigint  REFERENCES ingest.runs (run_id),
    row_hash      text    NOT NULL,
    geom          geometry(MultiPolygon, 4326) NOT NULL,
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX parcels_current_key ON cadastral.parcels (commune_code, sheet_no, parcel_no)
    WHERE valid_to IS NULL;
CREATE INDEX parcels_key_idx ON cadastral.parcels (commune_code, sheet_no, parcel_no, valid_from);
CREATE INDEX parcels_geom_idx ON cadastral.parcels USING gist (geom);
CREATE INDEX parcels_land_use_idx ON cadastral.parcels (land_use);

-- Lineage: which parcels a split or merge came from.
CREATE TABLE cadastral.parcel_lineage (
    child_id  bigint NOT NULL REFERENCES cadastral.parcels (parcel_id),
    parent_id bigint NOT NULL REFERENCES cadastral.parcels (parcel_id),
    event     text   NOT NULL CHECK (event IN ('split', 'merge', 'renumber')),
    run_id    bigint REFERENCES ingest.runs (run_id),
    PRIMARY KEY (child_id, parent_id)
);
CREATE INDEX parcel_lineage_parent_idx ON cadastral.parcel_lineage (parent_id);

-- The parcels in force, as published (no personal data lives in cadastral.*).
CREATE VIEW cadastral.parcels_current AS
    SELECT parcel_id, commune_code, sheet_no, parcel_no, land_use, legal_area_m2, address, owner_type,
           valid_from, source, licence, geom
    FROM cadastral.parcels WHERE valid_to IS NULL;

-- Personal data, kept apart from what is published: its own schema, never in a catalog layer.
CREATE SCHEMA IF NOT EXISTS private;
COMMENT ON SCHEMA private IS 'Personal data (owner names, identity numbers). Never published.';
CREATE TABLE private.parcel_owners (
    parcel_id   bigint NOT NULL REFERENCES cadastral.parcels (parcel_id) ON DELETE CASCADE,
    owner_name  text   NOT NULL,
    id_number   text,
    run_id      bigint REFERENCES ingest.runs (run_id),
    PRIMARY KEY (parcel_id, owner_name)
);
