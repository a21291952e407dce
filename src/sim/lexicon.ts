/**
 * The simulator's small world knowledge: domains recognised by keywords, each with the use cases,
 * skills and topics the simulator writes about. Seeds of the same domain get (mostly) the same use
 * case, so the pipeline's metadata distributions mean something.
 */
export interface Domain {
  id: string;
  keywords: string[];
  /** [usual label, alternative label]; the alternative is used when the seed hits one of altTriggers. */
  useCases: [string, string];
  altTriggers: string[];
  skills: string[];
  topics: string[];
}

export const domains: Domain[] = [
  {
    id: 'coding',
    altTriggers: ['bug', 'debug', 'error', 'fix', 'exception', 'crash'],
    keywords: ['code', 'coding', 'program', 'function', 'python', 'javascript', 'typescript', 'java', 'bug', 'debug', 'script', 'api', 'sql', 'algorithm', 'compile', 'regex', 'class', 'software', 'git'],
    useCases: ['software development', 'code debugging'],
    skills: ['code writing', 'debugging', 'algorithm design', 'code explanation', 'api usage', 'error handling'],
    topics: ['a CSV parser', 'a rate limiter', 'a binary search', 'a REST endpoint for user sign-up', 'a retry wrapper for HTTP calls', 'a LRU cache', 'a date formatting helper', 'a command-line todo app', 'unit tests for a shopping cart', 'a SQL query for monthly revenue'],
  },
  {
    id: 'writing',
    altTriggers: ['edit', 'proofread', 'rewrite', 'grammar', 'improve'],
    keywords: ['write', 'essay', 'story', 'poem', 'article', 'blog', 'letter', 'novel', 'paragraph', 'rewrite', 'edit', 'proofread', 'summary', 'summarize', 'summarise', 'headline'],
    useCases: ['creative writing', 'content editing'],
    skills: ['narrative structure', 'tone adaptation', 'concise writing', 'persuasive writing', 'grammar correction', 'vivid description'],
    topics: ['a rainy train journey', 'a lighthouse keeper', 'the first day at a new job', 'a lost letter', 'a city at night', 'an old family recipe', 'a chess tournament', 'moving to a new country', 'a robot learning to paint'],
  },
  {
    id: 'math',
    altTriggers: ['teach', 'explain', 'homework', 'student'],
    keywords: ['math', 'equation', 'solve', 'calculate', 'integral', 'derivative', 'algebra', 'geometry', 'probability', 'proof', 'theorem', 'fraction', 'percent', 'percentage', 'statistics'],
    useCases: ['math problem solving', 'math tutoring'],
    skills: ['step by step reasoning', 'algebraic manipulation', 'numerical calculation', 'proof writing', 'probability reasoning'],
    topics: ['compound interest over five years', 'the area of an irregular garden', 'two trains meeting', 'dice probabilities', 'a quadratic equation', 'the average speed of a round trip', 'splitting a bill with tips', 'the volume of a water tank'],
  },
  {
    id: 'travel',
    altTriggers: ['advice', 'tips', 'safe', 'visa', 'pack'],
    keywords: ['travel', 'trip', 'itinerary', 'vacation', 'holiday', 'flight', 'hotel', 'visit', 'tour', 'destination', 'backpacking', 'sightseeing'],
    useCases: ['trip itinerary planning', 'travel advice'],
    skills: ['itinerary planning', 'budget estimation', 'local knowledge', 'logistics coordination', 'time management'],
    topics: ['three days in Lisbon', 'a week in Japan by rail', 'a family weekend in the mountains', 'a budget trip to Mexico City', 'a road trip along the Norwegian coast', 'a business trip to Singapore', 'a honeymoon in Greece', 'a solo hike in Patagonia'],
  },
  {
    id: 'cooking',
    altTriggers: ['week', 'weekly', 'plan', 'meal', 'diet'],
    keywords: ['recipe', 'cook', 'cooking', 'bake', 'baking', 'dish', 'meal', 'ingredient', 'dinner', 'lunch', 'breakfast', 'vegan', 'kitchen', 'cake', 'soup'],
    useCases: ['recipe creation', 'meal planning'],
    skills: ['recipe design', 'ingredient substitution', 'nutrition awareness', 'cooking technique', 'meal planning'],
    topics: ['a weeknight pasta', 'a vegan curry', 'gluten-free bread', 'a birthday cake for ten', 'a high-protein breakfast', 'a picnic menu', 'meal prep for a busy week', 'a three-course dinner on a budget'],
  },
  {
    id: 'health',
    altTriggers: ['coach', 'habit', 'motivation', 'routine'],
    keywords: ['health', 'exercise', 'workout', 'fitness', 'diet', 'sleep', 'symptom', 'doctor', 'medical', 'stress', 'anxiety', 'weight', 'running', 'yoga'],
    useCases: ['health and fitness advice', 'wellness coaching'],
    skills: ['evidence based advice', 'habit formation', 'risk awareness', 'exercise programming', 'empathetic communication'],
    topics: ['training for a first 10k', 'better sleep for shift workers', 'desk-job back pain', 'managing exam stress', 'strength training at home', 'cutting down on sugar', 'staying active after 60', 'a morning stretching routine'],
  },
  {
    id: 'finance',
    altTriggers: ['invest', 'investment', 'stock', 'stocks', 'portfolio', 'fund'],
    keywords: ['money', 'budget', 'invest', 'investment', 'saving', 'savings', 'loan', 'mortgage', 'tax', 'retirement', 'stock', 'debt', 'finance', 'financial', 'credit'],
    useCases: ['personal finance planning', 'investment advice'],
    skills: ['financial planning', 'risk assessment', 'budget analysis', 'tax awareness', 'clear explanation'],
    topics: ['paying off credit card debt', 'saving for a house deposit', 'a first index fund', 'a monthly household budget', 'renting versus buying', 'an emergency fund', 'retirement savings at 35', 'a student loan repayment plan'],
  },
  {
    id: 'business',
    altTriggers: ['strategy', 'competitor', 'growth', 'compete'],
    keywords: ['business', 'startup', 'company', 'strategy', 'plan', 'market', 'revenue', 'product', 'customer', 'sales', 'pitch', 'investor', 'competitor', 'management', 'team'],
    useCases: ['business plan development', 'business strategy'],
    skills: ['market research', 'strategic planning', 'financial forecasting', 'competitive analysis', 'stakeholder communication'],
    topics: ['a neighbourhood coffee shop', 'a SaaS tool for dentists', 'a bicycle repair service', 'an online tutoring platform', 'a food truck', 'a small organic farm', 'a co-working space', 'a subscription box for pet owners'],
  },
  {
    id: 'education',
    altTriggers: ['explain', 'concept', 'understand'],
    keywords: ['teach', 'teaching', 'lesson', 'student', 'students', 'class', 'classroom', 'curriculum', 'school', 'quiz', 'exam', 'homework', 'teacher', 'kids'],
    useCases: ['lesson planning', 'educational explanation'],
    skills: ['lesson design', 'concept simplification', 'assessment design', 'audience adaptation', 'example generation'],
    topics: ['photosynthesis for ten-year-olds', 'the French Revolution', 'fractions with pizza slices', 'the water cycle', 'introductory Spanish greetings', 'how vaccines work', 'supply and demand', 'the basics of electricity'],
  },
  {
    id: 'science',
    altTriggers: ['experiment', 'hypothesis', 'why'],
    keywords: ['science', 'physics', 'chemistry', 'biology', 'experiment', 'atom', 'energy', 'climate', 'evolution', 'planet', 'quantum', 'cell', 'molecule', 'gravity'],
    useCases: ['science explanation', 'scientific reasoning'],
    skills: ['scientific explanation', 'analogy use', 'experimental design', 'fact checking', 'causal reasoning'],
    topics: ['why the sky is blue', 'how black holes form', 'the greenhouse effect', 'CRISPR gene editing', 'how batteries store energy', 'why ice floats', 'the life cycle of stars', 'antibiotic resistance'],
  },
  {
    id: 'law',
    altTriggers: ['contract', 'clause', 'review', 'lease'],
    keywords: ['law', 'legal', 'contract', 'lawyer', 'court', 'rights', 'lease', 'tenant', 'landlord', 'copyright', 'liability', 'regulation', 'gdpr', 'sue'],
    useCases: ['legal information', 'contract review'],
    skills: ['legal reasoning', 'plain language explanation', 'risk identification', 'document review'],
    topics: ['a residential lease dispute', 'copyright for a blog photo', 'a freelance contract', 'GDPR for a small web shop', 'returning a faulty product', 'a non-compete clause', 'a security deposit refund', 'writing a simple will'],
  },
  {
    id: 'marketing',
    altTriggers: ['slogan', 'copy', 'tagline', 'headline', 'ad'],
    keywords: ['marketing', 'campaign', 'brand', 'branding', 'advert', 'advertising', 'seo', 'social media', 'instagram', 'slogan', 'audience', 'newsletter', 'promotion', 'launch'],
    useCases: ['marketing campaign design', 'copywriting'],
    skills: ['audience targeting', 'copywriting', 'brand voice', 'campaign planning', 'seo optimization'],
    topics: ['a new running shoe', 'a local bakery', 'a mobile budgeting app', 'an eco-friendly detergent', 'a music festival', 'a language-learning podcast', 'a boutique hotel', 'a charity fun run'],
  },
  {
    id: 'support',
    altTriggers: ['complaint', 'angry', 'upset', 'unhappy'],
    keywords: ['refund', 'complaint', 'support', 'ticket', 'order', 'delivery', 'return', 'account', 'password', 'subscription', 'cancel', 'reply', 'apologize', 'apologise'],
    useCases: ['customer support response', 'complaint handling'],
    skills: ['empathetic communication', 'problem resolution', 'policy explanation', 'de escalation'],
    topics: ['a late delivery', 'a double charge on a card', 'a broken item on arrival', 'a locked account', 'a cancelled flight voucher', 'a subscription that renewed by surprise', 'a wrong size order', 'a missing loyalty discount'],
  },
  {
    id: 'data',
    altTriggers: ['chart', 'graph', 'plot', 'dashboard', 'visualization', 'visualize'],
    keywords: ['data', 'dataset', 'analysis', 'analyze', 'analyse', 'chart', 'graph', 'excel', 'spreadsheet', 'regression', 'pandas', 'dashboard', 'metrics', 'csv', 'visualization'],
    useCases: ['data analysis', 'data visualization'],
    skills: ['data cleaning', 'statistical analysis', 'data visualization', 'insight communication', 'spreadsheet formulas'],
    topics: ['monthly sales by region', 'website churn', 'survey responses from 500 customers', 'sensor readings with gaps', 'A/B test results', 'hospital waiting times', 'energy use per household', 'support ticket volumes'],
  },
  {
    id: 'career',
    altTriggers: ['resume', 'cv', 'cover', 'application'],
    keywords: ['resume', 'cv', 'interview', 'job', 'career', 'cover letter', 'promotion', 'salary', 'linkedin', 'hiring', 'manager', 'colleague'],
    useCases: ['career advice', 'job application writing'],
    skills: ['professional writing', 'self presentation', 'negotiation strategy', 'interview preparation'],
    topics: ['a junior data analyst role', 'a career change into nursing', 'asking for a raise', 'a gap year on a CV', 'a first management job', 'a remote developer interview', 'a graduate scheme application', 'returning to work after parental leave'],
  },
  {
    id: 'history',
    altTriggers: ['why', 'cause', 'causes', 'impact', 'analyze', 'analyse'],
    keywords: ['history', 'historical', 'war', 'empire', 'ancient', 'century', 'revolution', 'king', 'queen', 'civilization', 'medieval', 'dynasty'],
    useCases: ['historical explanation', 'history analysis'],
    skills: ['historical context', 'cause and effect', 'source evaluation', 'chronological ordering'],
    topics: ['the fall of the Roman Empire', 'the printing press', 'the Silk Road', 'the moon landing', 'the Industrial Revolution', 'the Meiji Restoration', 'the invention of the telephone', 'the Black Death'],
  },
  {
    id: 'language',
    altTriggers: ['learn', 'learning', 'practice', 'grammar', 'vocabulary'],
    keywords: ['translate', 'translation', 'spanish', 'french', 'german', 'chinese', 'grammar', 'vocabulary', 'language', 'pronounce', 'idiom', 'english'],
    useCases: ['language translation', 'language learning'],
    skills: ['translation accuracy', 'grammar explanation', 'cultural nuance', 'vocabulary building'],
    topics: ['ordering food in Italian', 'business email phrases in German', 'common French idioms', 'Spanish past tenses', 'polite requests in Japanese', 'English phrasal verbs', 'a hotel check-in dialogue', 'false friends between English and Portuguese'],
  },
  {
    id: 'relationships',
    altTriggers: ['partner', 'relationship', 'boyfriend', 'girlfriend', 'husband', 'wife', 'dating'],
    keywords: ['friend', 'relationship', 'partner', 'family', 'parent', 'child', 'kids', 'wedding', 'gift', 'birthday', 'advice', 'conflict', 'roommate'],
    useCases: ['personal advice', 'relationship advice'],
    skills: ['empathetic communication', 'conflict resolution', 'perspective taking', 'practical suggestions'],
    topics: ['a disagreement with a roommate', 'planning a surprise birthday', 'supporting a grieving friend', 'setting screen-time rules for kids', 'a long-distance relationship', 'a gift for a new grandparent', 'talking to a parent about moving out', 'reconnecting with an old friend'],
  },
  {
    id: 'tech',
    altTriggers: ['buy', 'recommend', 'best', 'compare', 'choose'],
    keywords: ['computer', 'laptop', 'phone', 'wifi', 'router', 'install', 'windows', 'linux', 'mac', 'printer', 'backup', 'security', 'device', 'app'],
    useCases: ['technical troubleshooting', 'technology advice'],
    skills: ['troubleshooting', 'step by step instructions', 'security awareness', 'product comparison'],
    topics: ['slow home Wi-Fi', 'backing up family photos', 'a laptop for video editing', 'a printer that will not connect', 'securing a home router', 'moving to a new phone', 'setting up two-factor login', 'freeing up disk space'],
  },
  {
    id: 'environment',
    altTriggers: ['garden', 'gardening', 'plant', 'plants', 'grow'],
    keywords: ['environment', 'sustainable', 'sustainability', 'recycling', 'recycle', 'carbon', 'pollution', 'renewable', 'solar', 'garden', 'gardening', 'plant', 'waste'],
    useCases: ['sustainability advice', 'gardening advice'],
    skills: ['practical suggestions', 'impact estimation', 'scientific explanation', 'plan creation'],
    topics: ['composting in a flat', 'solar panels for a terraced house', 'a zero-waste kitchen', 'a balcony vegetable garden', 'cutting a family car footprint', 'rainwater collection', 'a school recycling scheme', 'native plants for pollinators'],
  },
];

const STOPWORDS = new Set(
  ('a an the and or but if then of to in on at for with without by from into about as is are was were be been being ' +
    'this that these those it its i me my we our you your he she they them their what which who whom how why when where ' +
    'do does did can could should would will shall may might must please write give make explain tell create some any ' +
    'more most very much many also just than so such not no yes up out over under one two three using use need want help ' +
    'answer instruction request following below above each every all there here have has had get like following').split(' '),
);

/** Lower-case words of the text without stopwords, in order, duplicates removed. */
export function contentWords(text: string): string[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}'+#-]*/gu) ?? [];
  return [...new Set(words.filter((w) => w.length > 2 && !STOPWORDS.has(w)))];
}

function hasWord(text: string, word: string): boolean {
  return ` ${text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ')} `.includes(` ${word} `);
}

/** The domain's use case for this seed: the alternative label when the seed asks for that flavour. */
export function useCaseFor(domain: Domain, text: string): string {
  return domain.altTriggers.some((w) => hasWord(text, w)) ? domain.useCases[1] : domain.useCases[0];
}

/** Domains ordered by keyword hits (best first); empty when nothing matches. */
export function rankDomains(text: string): { domain: Domain; hits: number }[] {
  const lower = ` ${text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ')} `;
  return domains
    .map((domain) => ({
      domain,
      // A keyword counts as a whole word, or as a word prefix for stems (e.g. "budget" in "budgeting").
      hits: domain.keywords.filter((k) => lower.includes(` ${k} `) || lower.includes(` ${k}`)).length,
    }))
    .filter((d) => d.hits > 0)
    .sort((a, b) => b.hits - a.hits || domains.indexOf(a.domain) - domains.indexOf(b.domain));
}

/** The domain a use case (from the encode step, possibly written by another model) belongs to. */
export function domainOfUseCase(useCase: string, skills: string[]): Domain | undefined {
  const exact = domains.find((d) => d.useCases.includes(useCase.trim().toLowerCase()));
  return exact ?? rankDomains(`${useCase} ${skills.join(' ')}`)[0]?.domain;
}
