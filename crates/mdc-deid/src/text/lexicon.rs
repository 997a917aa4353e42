//! Word lists the detector needs: Korean surnames and given-name syllables,
//! words that begin with a surname syllable but are clinical vocabulary, and
//! English first names and capitalised words that are never names.
//!
//! They are plain string tables so that a data steward can read and extend
//! them; the detector turns them into regex alternations and hash sets once.

/// Two-syllable surnames first, so that an alternation built from this list
/// prefers `남궁` over `남`.
pub const KO_COMPOUND_SURNAMES: &[&str] = &[
    "남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방", "망절", "어금",
];

/// The most common single-syllable surnames (over 99% of the population).
pub const KO_SURNAMES: &[&str] = &[
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권",
    "황", "안", "송", "류", "유", "전", "홍", "고", "문", "양", "손", "배", "백", "허", "남",
    "심", "노", "하", "곽", "성", "차", "주", "우", "구", "민", "진", "나", "지", "엄", "채",
    "원", "천", "방", "공", "현", "함", "변", "염", "여", "추", "도", "소", "석", "선", "설",
    "마", "길", "연", "위", "표", "명", "기", "반", "왕", "금", "옥", "육", "인", "맹", "제",
    "모", "탁", "국", "봉", "경", "태", "피", "라", "묵", "빈", "승", "편", "용", "예",
];

/// Syllables that occur in Korean given names. A given name outside this set
/// is still found after a strong label (`환자명:`) but not from an honorific
/// alone, which is what keeps `조영제`, `고혈압` and friends out.
pub const KO_GIVEN_SYLLABLES: &str = "가각간갑강개건걸검겸경계고곤공관광교구국군궁권규균근금기길\
나난남낭내녀녕노누늘니다단달담당대덕도돈동두둘득들라란람랑래량려력련렬령례로록롱뢰료룡루류륜률르른리린림립\
마만말망매맹면명모목몽묘무묵문물미민밀바박반방배백범벽별병보복본봉부분불비빈빛사산삼상새샘생서석선설섬섭성세소속손솔송수숙순숭슬승시식신심\
아악안애앵야양어언엄여역연열염엽영예오옥온올옹완왕요욱용우운울웅원월위유육윤율융은을음응의이익인일임입잎\
자작잔장재쟁저적전절점정제조족존종주준중즙지직진질집징차찬찰참창채천철첨청초총추축춘출충취치칠침\
칸탁탄태택토통퇴파판팔패평포표품풍피필하학한할함합항해햇행향허헌혁현협형혜호홍화환활황회효후훈휘휴흔흠흥희힘";

/// Final syllables that make a word clinical vocabulary rather than a name
/// (`-증` symptom, `-염` inflammation, `-압` pressure, `-병` disease, …).
pub const KO_BAD_FINAL: &str = "증염압암통병제술과실질혈액종막관균약료법적";

/// Words that start with a surname syllable and look like a name in context
/// (before `환자`, after `환자`), but are clinical or everyday vocabulary.
pub const KO_STOPWORDS: &[&str] = &[
    "이상", "정상", "조영제", "신장", "전신", "한쪽", "전원", "고열", "신경", "장기", "안정",
    "이식", "정도", "정맥", "동맥", "신체", "전체", "주사", "소변", "대변", "고통", "유지",
    "조절", "조직", "신부전", "심부전", "정신", "하지", "상지", "하루", "이후", "이전", "이번",
    "이미", "이하", "이내", "이용", "이유", "유무", "유의", "주의", "주기", "주간", "주로",
    "반복", "반응", "방문", "배뇨", "배변", "변화", "설사", "성인", "소견", "소아", "손상",
    "수술", "수면", "수치", "수혈", "시행", "시간", "신규", "신생아", "심장", "안과", "양측",
    "양성", "여성", "연고", "오전", "오후", "우선", "원인", "원내", "임상", "임신", "장애",
    "정기", "정량", "정밀", "제거", "조기", "조사", "진단", "진료", "진행", "천식", "최근",
    "최대", "최소", "하부", "한번", "현재", "호흡", "홍반", "황달", "간경화", "노인성", "고령자",
    "고령", "당뇨", "당뇨병", "고혈압", "남성", "노인", "모든", "기존", "해당", "마취", "외래",
    "입원", "중환자", "응급", "경과", "경증", "중증", "도움", "지속", "진통", "구토", "기침",
    "강직", "경련", "차도", "차이", "지난", "지금", "오늘", "어제", "내일", "이날", "전날",
    "한번도", "한편", "조금", "조용", "정확", "명확", "성별", "연령", "나이", "신원", "보호",
    "보호자", "환자", "주치", "담당", "이름", "성명", "전공", "전문", "인턴", "간호", "의사",
    "선생", "교수", "원장", "과장", "가족", "배우자", "모친", "부친", "아들", "장남", "장녀",
    "차남", "차녀", "남편", "아내", "부인", "어머니", "아버지", "할머니", "할아버지", "소속",
    "연락", "주소", "주민", "등록", "병록", "번호", "전화", "휴대", "이메일", "방사선", "심전도",
    "위내시경", "전해질", "고지혈", "고지혈증", "조현병", "우울증", "공황", "천명", "안색",
    "안면", "장염", "위염", "간염", "신우신염", "전립선", "전이", "조영", "한방", "양방",
    "민감", "민감성", "진정", "진정제", "기관지", "기관", "기도", "연하", "연하곤란", "구강",
    "국소", "국소마취", "모니터", "여러", "여부", "추가", "추적", "추후", "표준", "표면",
    "방광", "배액", "백혈구", "적혈구", "혈소판", "홍조", "황색", "명치", "두통", "두드러기",
    "우상복부", "좌하복부", "하복부", "상복부", "금식", "금연", "금주", "변비", "왕진",
    "용량", "용법", "예정", "예후", "예방", "경구", "경피", "경정맥", "인지", "인공", "인공호흡",
    "제한", "제외", "제공", "제출", "모두", "원활", "원래", "위험", "위치", "노출", "남은",
    "강도", "강화", "송부", "손목", "손가락", "발목", "허리", "허혈", "소실", "소량", "다량",
    "석회", "석회화", "선별", "선행", "설명", "탁월", "태아", "태반", "피부", "피로", "피곤",
    "라인", "편측", "편도", "용종", "예약", "선택", "선천", "신속", "신청", "지시", "지연",
    "진찰", "진행성", "채혈", "천자", "방법", "공복", "현기증", "함께", "변경", "염증",
    "여전", "여전히", "추정", "도달", "소화", "소화기", "석방", "마비", "길이", "연속",
    "위장", "표시", "명시", "기간", "기저", "반대", "왕복", "금일", "옥시", "육안", "인후",
    "맹장", "제왕", "모양", "탁한", "국내", "봉합", "경미", "태도", "피하", "라식", "묵직",
    "빈혈", "빈맥", "승인", "편안", "용이", "예민",
];

/// Korean titles and honorifics that follow a name, attached or after a space.
/// Longer forms first, so that `교수님` is consumed whole.
pub const KO_HONORIFICS: &[&str] = &[
    "환자분", "환자", "환아", "보호자", "교수님", "교수", "선생님", "선생", "전문의", "전공의",
    "레지던트", "인턴", "간호사", "수간호사", "원장님", "원장", "과장님", "과장", "주치의",
    "약사", "여사", "할머니", "할아버지", "어르신", "님", "씨", "군", "양",
];

/// Josa (particles) that may follow a name; stripped from a name found after a label.
pub const KO_PARTICLES: &[&str] = &[
    "에게서", "으로서", "께서", "에게", "한테", "으로", "이나", "이랑", "은", "는", "이", "가",
    "을", "를", "와", "과", "의", "도", "에", "로", "랑", "나",
];

/// Labels after which the next Hangul word is a name whatever its syllables.
pub const KO_NAME_LABELS_STRONG: &[&str] = &[
    "환자명", "환자 성명", "환자이름", "환자 이름", "성명", "이름", "보호자명", "보호자 성명",
    "주치의명", "작성자", "작성의", "판독의", "집도의", "의뢰의", "담당의", "담당 의사",
    "담당간호사", "담당 간호사", "서명", "확인자", "기록자", "보호자", "주치의",
];

/// Labels before a hospital record number (MRN).
pub const MRN_LABELS: &[&str] = &[
    "등록번호", "병록번호", "환자번호", "차트번호", "환자 ID", "환자ID", "진료번호", "내원번호",
    "MRN", "Medical Record Number", "Medical Record No", "Med Rec No", "Record No",
    "Record Number", "Chart No", "Chart Number", "Hospital No", "Hospital Number",
    "Patient ID", "Pt ID", "Unit No", "Unit Number",
];

/// Labels before other identifiers (insurance, licence, passport, account, vehicle, SSN).
pub const ID_LABELS: &[&str] = &[
    "건강보험증번호", "건강보험 번호", "건강보험번호", "보험증번호", "보험번호", "의료급여번호",
    "면허번호", "의사면허번호", "의사면허", "운전면허번호", "운전면허", "여권번호", "여권",
    "계좌번호", "계좌", "차량번호", "외국인등록번호", "사업자번호", "카드번호",
    "Insurance ID", "Insurance No", "Insurance Number", "Member ID", "Policy No",
    "Policy Number", "Medicare No", "Medicare Number", "Medicaid ID", "Medicaid No",
    "License No", "License Number", "Licence No", "Licence Number", "Driver's License",
    "DEA No", "DEA", "NPI", "Passport No", "Passport Number", "Passport", "Account No",
    "Account Number", "Acct No", "Bank Account", "License Plate", "Plate No", "Vehicle No",
    "SSN", "Social Security Number", "Social Security No",
];

/// Common English first names, for "First Last" and "Last, First" without a title.
/// Words that are also ordinary English (Will, Mark, Grace, May, Bill) are left out.
pub const EN_FIRST_NAMES: &[&str] = &[
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Donald", "Steven", "Paul",
    "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward",
    "Jason", "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen",
    "Larry", "Justin", "Scott", "Brandon", "Benjamin", "Samuel", "Gregory", "Alexander",
    "Patrick", "Raymond", "Jack", "Dennis", "Jerry", "Tyler", "Aaron", "Jose", "Henry",
    "Adam", "Douglas", "Nathan", "Peter", "Zachary", "Kyle", "Walter", "Harold", "Jeremy",
    "Ethan", "Carl", "Keith", "Roger", "Gerald", "Christian", "Terry", "Sean", "Arthur",
    "Austin", "Noah", "Lawrence", "Jesse", "Joe", "Bryan", "Billy", "Jordan", "Albert",
    "Dylan", "Bruce", "Willie", "Gabriel", "Alan", "Juan", "Logan", "Wayne", "Ralph", "Roy",
    "Eugene", "Randy", "Vincent", "Russell", "Louis", "Philip", "Bobby", "Johnny", "Bradley",
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
    "Sarah", "Karen", "Nancy", "Lisa", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly",
    "Emily", "Donna", "Michelle", "Dorothy", "Carol", "Amanda", "Melissa", "Deborah",
    "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Kathleen", "Amy", "Shirley",
    "Angela", "Helen", "Anna", "Brenda", "Pamela", "Nicole", "Emma", "Samantha", "Katherine",
    "Christine", "Debra", "Rachel", "Catherine", "Carolyn", "Janet", "Ruth", "Maria",
    "Heather", "Diane", "Virginia", "Julie", "Joyce", "Victoria", "Olivia", "Kelly",
    "Christina", "Lauren", "Joan", "Evelyn", "Judith", "Megan", "Cheryl", "Andrea", "Hannah",
    "Martha", "Jacqueline", "Frances", "Gloria", "Ann", "Teresa", "Kathryn", "Sara", "Janice",
    "Jean", "Alice", "Madison", "Doris", "Abigail", "Julia", "Judy", "Sophia", "Theresa",
    "Denise", "Marilyn", "Beverly", "Isabella", "Diana", "Natalie", "Brittany", "Charlotte",
    "Marie", "Kayla", "Alexis", "Lori", "Minjun", "Jihoon", "Seojun", "Jiwoo", "Soyeon",
];

/// Capitalised words that are never (part of) a person's name in a note:
/// sentence starters, clinical vocabulary, places of care, calendar words.
pub const EN_STOP_WORDS: &[&str] = &[
    "The", "This", "That", "These", "Those", "There", "Then", "Than", "They", "She", "He",
    "His", "Her", "Hers", "Him", "We", "Our", "You", "Your", "It", "Its", "And", "But", "For",
    "Not", "With", "Without", "From", "Into", "Onto", "Upon", "After", "Before", "During",
    "Since", "Until", "While", "When", "Where", "Which", "Who", "Whom", "Whose", "Why", "How",
    "All", "Any", "Both", "Each", "Few", "More", "Most", "Other", "Some", "Such", "No", "Nor",
    "Only", "Own", "Same", "So", "Too", "Very", "Can", "Will", "Just", "Should", "Now",
    "Patient", "Patients", "Pt", "Name", "Hospital", "Clinic", "Department", "Dept",
    "Medical", "Medicine", "Center", "Centre", "University", "College", "Emergency", "Room",
    "Unit", "Service", "Services", "Ward", "Floor", "Cardiology", "Neurology", "Oncology",
    "Radiology", "Pathology", "Surgery", "Surgical", "Internal", "Family", "General",
    "Pediatrics", "Pediatric", "Psychiatry", "Orthopedics", "Urology", "Nephrology",
    "Pulmonology", "Gastroenterology", "Dermatology", "Obstetrics", "Gynecology", "Clinical",
    "Discharge", "Admission", "Admitted", "Assessment", "Plan", "History", "Physical",
    "Exam", "Examination", "Review", "Systems", "Impression", "Diagnosis", "Diagnoses",
    "Procedure", "Procedures", "Report", "Note", "Notes", "Progress", "Summary", "Follow",
    "Labs", "Lab", "Laboratory", "Imaging", "Medications", "Medication", "Allergies",
    "Allergy", "Vitals", "Vital", "Signs", "Sign", "Disease", "Syndrome", "Test", "Scale",
    "Score", "Type", "Stage", "Grade", "Class", "Level", "Left", "Right", "Bilateral",
    "Normal", "Abnormal", "Positive", "Negative", "Chief", "Complaint", "Present", "Illness",
    "Social", "Past", "Denies", "Reports", "Presents", "Presented", "Seen", "Signed",
    "Electronically", "Dictated", "Attending", "Resident", "Nurse", "Physician", "Doctor",
    "Contact", "Emergency", "Street", "Avenue", "Road", "Drive", "Lane", "Court", "Suite",
    "North", "South", "East", "West", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Sunday", "January", "February", "March", "April", "June", "July", "August",
    "September", "October", "November", "December", "Today", "Tomorrow", "Yesterday",
    "Morning", "Evening", "Night", "Daily", "Weekly", "Monthly", "Blood", "Pressure",
    "Heart", "Rate", "Temperature", "Oxygen", "Saturation", "Chest", "Abdomen", "Head",
    "Neck", "Extremities", "Skin", "Lungs", "Neuro", "Vitamin", "Hepatitis", "Insulin",
    "Tablet", "Tablets", "Capsule", "Dose", "Hemoglobin", "Glucose", "Sodium", "Potassium",
    "Creatinine", "Culture", "Cultures", "Negative", "Mother", "Father", "Wife", "Husband",
    "Son", "Daughter", "Brother", "Sister", "Spouse", "Guardian", "Mr", "Mrs", "Ms", "Dr",
    "Prof", "Miss", "MD", "RN", "Korea", "Korean", "Seoul", "English", "American", "Asian",
    "Tylenol", "Aspirin", "Heparin", "Lasix", "Coumadin", "Zosyn", "Vancomycin", "Metformin",
    "Lisinopril", "Atorvastatin", "Ceftriaxone", "Plavix", "Eliquis", "Xarelto", "Foley",
    "Whipple", "Glasgow", "Coma", "Apgar", "Babinski", "Parkinson", "Crohn", "Murphy",
    "Alzheimer", "Bell", "Down", "Graves", "Cushing", "Hodgkin", "Homans", "Apley", "Addison",
    "Wernicke", "Korsakoff", "Guillain", "Barre", "Raynaud", "Sjogren", "Kawasaki",
    "Tourette", "Huntington", "Hashimoto", "Meniere", "Brugada", "Wolff", "White", "Stable",
    "Well", "Good", "Fair", "Poor", "Pain", "Fever", "Cough", "Nausea", "Vomiting", "Also",
    "Continue", "Start", "Stop", "Hold", "Increase", "Decrease", "Repeat", "Check", "Call",
    "Return", "Please", "Thank", "Thanks", "See", "Per", "Via", "Status", "Post", "Pre",
];
